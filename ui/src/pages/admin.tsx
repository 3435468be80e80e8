/** Admin: the audit log with its verify status and last checkpoint, and the keyring's versions (never key material). */
import { useState } from "preact/hooks";
import { ErrorBox, Page, useApi } from "../components.tsx";
import { formatTime } from "../lib/format.ts";

interface Audit {
  readonly entries: readonly Record<string, unknown>[];
  readonly verify: { ok: boolean; checked: number; problem: string | null };
  readonly lastCheckpoint: Record<string, unknown> | null;
  readonly nextBefore?: number | null;
}

/** The checkpoint as the audit reader describes it ({ seq, time, covers, keyId }); other fields listed as they are. */
function checkpointText(c: Record<string, unknown> | null): string {
  if (!c) return "none yet";
  const { seq, time, covers, keyId, ...rest } = c;
  const known = [seq !== undefined ? `#${str(seq)}` : "", time ? `at ${formatTime(str(time))}` : "", covers !== undefined ? `covers ${str(covers)} entries` : "", keyId ? `signed with key ${str(keyId)}` : ""];
  return [...known, ...Object.entries(rest).map(([k, v]) => `${k} ${str(v)}`)].filter(Boolean).join(", ");
}

const str = (v: unknown) => (v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v));

export function AdminPage() {
  // The cursors of the newer pages, so "Newer" goes back (the API pages backwards with ?before=).
  const [befores, setBefores] = useState<(number | null)[]>([null]);
  const before = befores[befores.length - 1] ?? null;
  const audit = useApi<Audit>(`/v1/audit?limit=100${before === null ? "" : `&before=${before}`}`, before === null ? 10000 : undefined);
  const nextBefore = audit.data?.nextBefore ?? null;
  const keyring = useApi<{ versions: { version: number | string; createdAt: string; retired: boolean; active: boolean }[] }>("/v1/keyring");
  const v = audit.data?.verify;
  return (
    <Page title="Admin">
      <ErrorBox error={audit.error ?? keyring.error} />
      <h2>Audit log</h2>
      {v ? (
        <p class={`verify ${v.ok ? "ok" : "bad"}`} data-testid="audit-verify" data-ok={String(v.ok)}>
          {v.ok ? `Chain verified: ${v.checked} entries intact.` : `Verification FAILED after ${v.checked} entries: ${v.problem ?? "unknown problem"}`}
        </p>
      ) : null}
      {audit.data ? <p class="muted">Last checkpoint: {checkpointText(audit.data.lastCheckpoint)}</p> : null}
      <table class="grid audit">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Object</th>
            <th scope="col">Outcome</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {(audit.data?.entries ?? []).map((e) => {
            // The chain hash (prev) proves order, not meaning: left out of the table.
            const { seq, time, at, actor, action, object, outcome, data, source, tenant: _tenant, prev: _prev, ...rest } = e;
            const details = { ...(data && typeof data === "object" ? data : {}), ...rest, ...(source ? { source } : {}) };
            return (
              <tr data-testid="audit-entry" data-outcome={str(outcome)}>
                <td>{str(seq)}</td>
                <td class="nowrap">{formatTime(str(time ?? at))}</td>
                <td>{str(actor)}</td>
                <td class="mono">{str(action)}</td>
                <td class="mono">{str(object)}</td>
                <td class={outcome === "denied" || outcome === "failed" ? "bad" : undefined}>{str(outcome)}</td>
                <td class="mono small">{Object.entries(details).map(([k, x]) => `${k}=${str(x)}`).join("  ")}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <nav class="pager" aria-label="audit pages">
        <button type="button" disabled={befores.length === 1} onClick={() => setBefores((b) => b.slice(0, -1))}>
          ← Newer
        </button>
        <button type="button" data-testid="audit-older" disabled={nextBefore === null} onClick={() => nextBefore !== null && setBefores((b) => [...b, nextBefore])}>
          Older →
        </button>
      </nav>
      <h2>Keyring</h2>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Created</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {(keyring.data?.versions ?? []).map((k) => (
            <tr data-testid="keyring-version">
              <td>{k.version}</td>
              <td>{formatTime(k.createdAt)}</td>
              <td>{k.active ? "active" : k.retired ? "retired" : "readable"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}
