/**
 * The app for residents and workers (`GET /app`): the shell (sign-in, the
 * connection banner, the tabs of each role, hash routes) and the service
 * worker's registration. Screens live in `screens/`; the live state in
 * `state.ts`; the protocol in `@dispatchd/client`.
 *
 * Layout:
 * - `session.ts`: the client, the token kept across reloads, the socket → store.
 * - `state.ts` / `store.ts`: the reducer (pure) and its Preact hook.
 * - `format.ts`, `geo.ts`, `route.ts`: pure helpers (unit-tested).
 * - `map.tsx`: Leaflet with the land outline; `place.tsx`, `photos.tsx`: form parts.
 * - `api.ts`: `/v1/me`, uploads, attachments as `blob:` URLs.
 * - `sw.ts`: the service worker (Workbox precache of the whole shell).
 * @module
 */
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { href, parse, type Route } from "./route.js";
import { JobPage } from "./screens/job.js";
import { SignIn, SignUp } from "./screens/auth.js";
import { Logs } from "./screens/logs.js";
import { Profile } from "./screens/profile.js";
import { NewRequest, Properties, Requests } from "./screens/resident.js";
import { Work } from "./screens/worker.js";
import { loadSaved, Session, type Saved } from "./session.js";
import { Banner } from "./ui.js";

function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () => setRoute(parse(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

interface Tab {
  route: Route;
  label: string;
}

const TABS: Record<"resident" | "worker", Tab[]> = {
  resident: [
    { route: { name: "home" }, label: "Requests" },
    { route: { name: "new" }, label: "New request" },
    { route: { name: "properties" }, label: "Properties" },
    { route: { name: "profile" }, label: "Profile" },
  ],
  worker: [
    { route: { name: "home" }, label: "Work" },
    { route: { name: "logs" }, label: "Logs" },
    { route: { name: "profile" }, label: "Profile" },
  ],
};

function App() {
  const route = useRoute();
  const [notice, setNotice] = useState("");
  const ended = (why: string) => {
    setNotice(why);
    setSession((s) => {
      s?.close();
      return null;
    });
  };
  const [session, setSession] = useState<Session | null>(() => {
    const saved = loadSaved();
    return saved ? new Session(saved, ended) : null;
  });
  const start = (saved: Saved) => {
    setNotice("");
    setSession(new Session(saved, ended));
    location.hash = href({ name: "home" });
  };
  // The network as the browser sees it, for the banner.
  useEffect(() => {
    if (!session) return;
    const on = () => session.store.dispatch({ type: "online", online: navigator.onLine });
    on();
    addEventListener("online", on);
    addEventListener("offline", on);
    return () => {
      removeEventListener("online", on);
      removeEventListener("offline", on);
    };
  }, [session]);
  // Keyboard and screen-reader users land on the new screen's heading.
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.querySelector<HTMLElement>("h1")?.focus();
  }, [route, !!session]);

  if (!session) {
    return route.name === "signup" ? <SignUp onSignedIn={start} /> : <SignIn onSignedIn={start} notice={notice} />;
  }
  const role = session.user.role === "worker" ? "worker" : "resident";
  const signOut = () => {
    session.close();
    setSession(null);
    location.hash = href({ name: "home" });
  };
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.querySelector<HTMLElement>("h1")?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">dispatchd</span>
        <span class="who">
          {session.user.name} · {role === "worker" ? "engineer" : "resident"}
        </span>
      </header>
      <Banner session={session} />
      <main id="main" ref={main}>
        {screen(session, role, route, signOut)}
      </main>
      <nav class="tabs" aria-label="Sections">
        {TABS[role].map((t) => (
          <a key={t.label} href={href(t.route)} aria-current={route.name === t.route.name ? "page" : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
    </>
  );
}

function screen(session: Session, role: "resident" | "worker", route: Route, signOut: () => void) {
  switch (route.name) {
    case "profile":
      return <Profile session={session} onSignOut={signOut} />;
    case "job":
      return <JobPage session={session} id={route.id} />;
    case "new":
      return role === "resident" ? <NewRequest session={session} /> : <Work session={session} />;
    case "properties":
      return role === "resident" ? <Properties session={session} /> : <Work session={session} />;
    case "logs":
      return role === "worker" ? <Logs session={session} /> : <Requests session={session} />;
    case "home":
    case "signup":
      return role === "resident" ? <Requests session={session} /> : <Work session={session} />;
  }
}

render(<App />, document.getElementById("app")!);

// The shell works offline once this has installed (it precaches every file).
if ("serviceWorker" in navigator) {
  addEventListener("load", () => {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app" }).catch(() => {
      // Not fatal: the app works online without it (e.g. an insecure origin).
    });
  });
}
