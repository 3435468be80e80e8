/** Paste an API token; the agent turns it into an HttpOnly session cookie. */
import { useState } from "preact/hooks";
import { login, messageOf, type Session } from "../api.ts";
import { ErrorBox } from "../components.tsx";

export function LoginPage({ onLoggedIn }: { onLoggedIn: (s: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = (e: Event) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return setError("paste an API token (from gpufabric tokens create, or one that gpufabric dev printed)");
    setBusy(true);
    login(t)
      .then((s) => {
        setToken("");
        onLoggedIn(s);
      })
      .catch((err) => setError(messageOf(err)))
      .finally(() => setBusy(false));
  };
  return (
    <section class="login">
      <h1>gpufabric</h1>
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          placeholder="paste a token"
        />
        <button type="submit" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
      <ErrorBox error={error} />
      <p class="hint">The token stays in this page only long enough to open a session; the browser keeps an HttpOnly cookie.</p>
    </section>
  );
}
