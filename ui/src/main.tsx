/** The dashboard's shell: session, header with navigation, and the hash router. */
import "./styles.css";
import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { currentSession, login, logout, messageOf, setUnauthorizedHandler, type Session } from "./api.ts";
import { ErrorBox } from "./components.tsx";
import { parseRoute, tokenFromHash, type Route } from "./lib/route.ts";
import { lazyPage } from "./lazy.tsx";
import { prefetchJson, runDetailPath, runsListPath } from "./lib/prefetch.ts";
import { LoginPage } from "./pages/login.tsx";
import { RunsPage } from "./pages/runs.tsx";

// Every page but the runs list (and the login form) is its own chunk, loaded when first shown.
const RunPage = lazyPage(() => import("./pages/run.tsx").then((m) => m.RunPage));
const GpusPage = lazyPage(() => import("./pages/gpus.tsx").then((m) => m.GpusPage));
const FairSharePage = lazyPage(() => import("./pages/fairshare.tsx").then((m) => m.FairSharePage));
const WorkflowPage = lazyPage(() => import("./pages/workflow.tsx").then((m) => m.WorkflowPage));
const AdminPage = lazyPage(() => import("./pages/admin.tsx").then((m) => m.AdminPage));
const UsagePage = lazyPage(() => import("./pages/usage.tsx").then((m) => m.UsagePage));

/**
 * What the page the address names needs first, started at boot beside the session check rather than
 * after it: its code chunk, and for the runs list and a run their first read.
 */
function bootReads(route: Route): void {
  const chunk = { run: RunPage, gpus: GpusPage, fairshare: FairSharePage, workflow: WorkflowPage, admin: AdminPage, usage: UsagePage }[route.page as string];
  chunk?.preload().catch(() => undefined);
  if (route.page === "runs") prefetchJson(runsListPath({ status: "", workflow: "", priority: "" }, null));
  if (route.page === "run") prefetchJson(runDetailPath(route.id));
}

/** Goes to `hash`; when the address already shows it (a replaceState left no hashchange behind), re-reads it. */
function navigate(hash: string): void {
  if (location.hash === hash) dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

const NAV: readonly { page: Route["page"]; href: string; label: string; testid: string }[] = [
  { page: "runs", href: "#/runs", label: "Runs", testid: "nav-runs" },
  { page: "gpus", href: "#/gpus", label: "GPUs", testid: "nav-gpus" },
  { page: "fairshare", href: "#/fairshare", label: "Fair share", testid: "nav-fairshare" },
  { page: "usage", href: "#/usage", label: "Usage", testid: "nav-usage" },
  { page: "admin", href: "#/admin", label: "Admin", testid: "nav-admin" },
];

function Header({ session, route, onLogout }: { session: Session; route: Route; onLogout: () => void }) {
  const current = route.page === "run" ? "runs" : route.page;
  return (
    <header class="top">
      <a class="brand" href="#/runs">
        gpufabric
      </a>
      <nav aria-label="main">
        {/* The admin page reads admin-only routes: other roles would only see the refusal. */}
        {NAV.filter((n) => n.page !== "admin" || session.role === "admin").map((n) => (
          <a href={n.href} data-testid={n.testid} class={current === n.page ? "current" : undefined} aria-current={current === n.page ? "page" : undefined}>
            {n.label}
          </a>
        ))}
      </nav>
      <span class="whoami" data-testid="whoami" title={`tenant ${session.tenant}, role ${session.role}`}>
        {session.subject} · {session.tenant} · {session.role}
      </span>
      <button type="button" class="link" onClick={onLogout}>
        Log out
      </button>
    </header>
  );
}

let returnTo = "#/runs";

function App() {
  const route = useRoute();
  // undefined: not known yet; null: logged out.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);

  const toLogin = useCallback(() => {
    setSession(null);
    // After logging in, back to the page that asked (a shared link to a run), not always the runs list.
    if (parseRoute(location.hash).page !== "login") {
      returnTo = location.hash || "#/runs";
      navigate("#/login");
    }
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(toLogin);
    // `npm start` prints /ui/#token=…: use it once, then take it out of the address bar and history.
    const token = tokenFromHash(location.hash);
    if (token !== null) {
      history.replaceState(null, "", `${location.pathname}${location.search}#/runs`);
      login(token)
        .then((s) => {
          setSession(s);
          navigate("#/runs");
        })
        .catch((err) => {
          setError(`the link's token was refused: ${messageOf(err)}`);
          toLogin();
        });
      return;
    }
    (bootSession ?? currentSession())
      .then((s) => {
        setSession(s);
        if (s === null) toLogin();
      })
      .catch((err) => {
        setError(messageOf(err));
        setSession(null);
      });
  }, [toLogin]);

  const onLoggedIn = (s: Session) => {
    setSession(s);
    setError(null);
    navigate(returnTo);
    returnTo = "#/runs";
  };
  const onLogout = () => {
    logout()
      .catch(() => undefined)
      .finally(toLogin);
  };

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null || route.page === "login")
    return (
      <main>
        <ErrorBox error={error} />
        <LoginPage onLoggedIn={onLoggedIn} />
      </main>
    );
  return (
    <>
      <Header session={session} route={route} onLogout={onLogout} />
      <main>
        <ErrorBox error={error} />
        {pageOf(route, session)}
      </main>
    </>
  );
}

function pageOf(route: Route, session: Session) {
  switch (route.page) {
    case "runs":
      return <RunsPage />;
    case "run":
      return <RunPage key={route.id} id={route.id} session={session} />;
    case "gpus":
      return <GpusPage />;
    case "fairshare":
      return <FairSharePage />;
    case "workflow":
      return <WorkflowPage key={route.name} name={route.name} />;
    case "admin":
      return <AdminPage />;
    case "usage":
      return <UsagePage />;
    case "login":
      return null;
    case "not-found":
      return <ErrorBox error={`no page '${route.path}': pick one from the menu`} />;
  }
}

// Who is logged in, asked at boot (not after the first render) unless the address carries a token to log in with.
const bootSession: Promise<Session | null> | null = tokenFromHash(location.hash) === null ? currentSession() : null;
bootSession?.catch(() => undefined);
bootReads(parseRoute(location.hash));
render(<App />, document.getElementById("app")!);
