/**
 * The worker's screen: available / not available, the device's position
 * sent while available or on a job (Geolocation, at most every 2 s or
 * 25 m), the offer card with its countdown, the active job (navigation
 * links, arrived, complete, the fare), the parts it needs and the van's
 * stock.
 * @module
 */
import { unwrap, type components, type Job } from "@dispatchd/client";
import { useEffect, useRef, useState } from "preact/hooks";
import { getMe } from "../api.js";
import { clock, countdown, distance, money, secondsLeft } from "../format.js";
import { geoUri, osmUrl, shouldSend, type Sent } from "../geo.js";
import { MapView, type Pin } from "../map.js";
import { describe, type Session } from "../session.js";
import { activeJob, newestFirst, type Offer } from "../state.js";
import { useStore } from "../store.js";
import { Loading, Photos, Section, useNow, useRetry } from "../ui.js";

type Balance = components["schemas"]["BalanceView"];
type Part = components["schemas"]["PartView"];

const availableKey = (id: string) => `dispatchd.app.available.${id}`;

export function Work({ session }: { session: Session }) {
  const me = session.user;
  const active = useStore(session.store, (s) => activeJob(s, me.id));
  const offer = useStore(session.store, (s) => s.offer);
  const [available, setAvailable] = useState<boolean>(() => localStorage.getItem(availableKey(me.id)) === "true");
  const [availError, setAvailError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [jobsState, setJobsState] = useState<"loading" | "ready" | string>("loading");
  const [done, setDone] = useState<string | null>(null);

  const setAvail = async (on: boolean) => {
    setAvailable(on);
    localStorage.setItem(availableKey(me.id), String(on));
    setSaving(true);
    setAvailError(null);
    try {
      // Waits for the socket when it is reconnecting; the library re-sends it after every reconnect.
      await session.socket.send({ type: "availability", available: on });
    } catch (e) {
      setAvailError(describe(e));
    }
    setSaving(false);
  };

  const loadJobs = () =>
    void session.refreshJobs().then(
      () => setJobsState("ready"),
      (e) => setJobsState(describe(e)),
    );
  useRetry(session, jobsState !== "loading" && jobsState !== "ready", loadJobs);
  useEffect(() => {
    loadJobs();
    // The server's word on availability; a saved wish to be available is sent again.
    getMe(session).then(
      (m) => {
        const wish = localStorage.getItem(availableKey(me.id));
        if (wish === "true" || (wish === null && m.available)) void setAvail(true);
        else if (m.available != null) setAvailable(m.available);
      },
      () => {
        if (localStorage.getItem(availableKey(me.id)) === "true") void setAvail(true);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session]);

  const position = usePosition(session, available || !!active);
  const recent = useStore(session.store, (s) => s.jobs);
  const finished = newestFirst(recent).filter((j) => j.worker_id === me.id && (j.status === "completed" || j.status === "cancelled"));
  const doneJob = done ? recent[done] : undefined;

  return (
    <>
      <h1 tabIndex={-1}>Work</h1>
      <div class="availability">
        <label class="switch">
          <input type="checkbox" role="switch" checked={available} onChange={(e) => void setAvail((e.currentTarget as HTMLInputElement).checked)} />
          <span>Available for work</span>
        </label>
        <p role="status" class="muted" data-available={String(available)}>
          {saving ? "Saving…" : available ? "You can receive offers." : "You are not receiving offers."}
        </p>
        {availError && (
          <p class="error" role="alert">
            {availError}
          </p>
        )}
        <p class={position.error ? "error" : "muted"} role="status" data-sent={position.sent ? `${position.sent.lat.toFixed(5)},${position.sent.lng.toFixed(5)}` : ""}>
          {position.error ??
            (available || active
              ? position.sent
                ? `Position shared at ${clock(new Date(position.sent.at).toISOString())}.`
                : "Finding your position…"
              : "Your position is not shared while you are not available.")}
        </p>
      </div>
      {offer && (!active || offer.job_id !== active.id) && <OfferCard session={session} offer={offer} />}
      {active && <ActiveJob session={session} job={active} position={position.sent} onDone={setDone} />}
      {!active && doneJob?.status === "completed" && (
        <section class="card done" aria-labelledby="done-title" data-fare={doneJob.fare_cents ?? ""}>
          <h2 id="done-title">Job completed</h2>
          <p>
            Fare: <strong>{doneJob.fare_cents != null ? money(doneJob.fare_cents) : "not billed"}</strong>
          </p>
          <button type="button" onClick={() => setDone(null)}>
            Dismiss
          </button>
        </section>
      )}
      {!active && !offer && jobsState === "loading" && <Loading what="your jobs" />}
      {jobsState !== "loading" && jobsState !== "ready" && (
        <p class="error" role="alert">
          {jobsState}
        </p>
      )}
      {!active && !offer && jobsState === "ready" && <p class="muted">{available ? "Waiting for an offer…" : "Set yourself available to receive offers."}</p>}
      <VanStock session={session} parts={active?.parts ?? []} />
      {finished.length > 0 && (
        <Section title="Recent jobs" id="recent">
          <ul class="cards" aria-label="Recent jobs">
            {finished.slice(0, 10).map((j) => (
              <li class="card" key={j.id}>
                <strong>{j.description || j.skill}</strong>
                <span class="muted">
                  {j.status} · {clock(j.completed_at ?? j.cancelled_at ?? j.created_at)}
                  {j.fare_cents != null ? ` · ${money(j.fare_cents)}` : ""}
                </span>
              </li>
            ))}
          </ul>
        </Section>
      )}
    </>
  );
}

/**
 * Watches the device's position while `on`, and sends it through the
 * socket's `track` (which keeps only the latest while disconnected) when
 * {@link shouldSend} says so; a timer re-sends a still position before the
 * server counts it stale.
 */
function usePosition(session: Session, on: boolean): { sent: Sent | null; error: string | null } {
  const [sent, setSent] = useState<Sent | null>(null);
  const [error, setError] = useState<string | null>(null);
  const last = useRef<Sent | null>(null);
  useEffect(() => {
    if (!on) return;
    if (!("geolocation" in navigator)) {
      setError("This device cannot tell its position: you will not receive offers.");
      return;
    }
    let latest: { lat: number; lng: number } | null = null;
    const consider = () => {
      const now = Date.now();
      if (latest && shouldSend(last.current, latest, now)) {
        session.socket.track(latest.lat, latest.lng);
        last.current = { ...latest, at: now };
        setSent(last.current);
      }
    };
    const watch = navigator.geolocation.watchPosition(
      (p) => {
        latest = { lat: p.coords.latitude, lng: p.coords.longitude };
        setError(null);
        consider();
      },
      (e) =>
        setError(
          e.code === e.PERMISSION_DENIED
            ? "Location permission is off for this site: allow it to receive offers."
            : "Your position cannot be found right now: offers need it.",
        ),
      { enableHighAccuracy: true, maximumAge: 5_000 },
    );
    const timer = setInterval(consider, 1_000);
    return () => {
      navigator.geolocation.clearWatch(watch);
      clearInterval(timer);
    };
  }, [session, on]);
  return { sent: on ? sent : null, error: on ? error : null };
}

function OfferCard({ session, offer }: { session: Session; offer: Offer }) {
  const now = useNow(250);
  const left = secondsLeft(offer.expires_at, now);
  const [busy, setBusy] = useState<"accept" | "decline" | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [photos, setPhotos] = useState<string[]>([]);
  useEffect(() => {
    setError(null);
    unwrap(session.d.rest.GET("/v1/jobs/{id}", { params: { path: { id: offer.job_id } } })).then(
      (j) => setPhotos(j.attachments ?? []),
      () => setPhotos([]),
    );
  }, [session, offer.job_id]);
  const expired = !offer.revoked && left === 0;
  const gone = offer.revoked ?? (expired ? "expired" : null);

  const step = async (s: "accept" | "decline") => {
    setBusy(s);
    setError(null);
    try {
      const job = await unwrap(session.d.rest.POST("/v1/jobs/{id}/{step}", { params: { path: { id: offer.job_id, step: s } } }));
      session.store.dispatch({ type: "job", job });
      session.store.dispatch({ type: "offer_done", job_id: offer.job_id, why: s === "accept" ? "accepted" : "declined" });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "offer_expired") session.store.dispatch({ type: "offer_done", job_id: offer.job_id, why: "expired" });
      else setError(describe(e));
    }
    setBusy(null);
  };

  if (gone === "accepted") return null;
  const state = gone ? `gone-${gone}` : "open";
  return (
    <section class={`card offer ${gone ? "gone" : ""}`} aria-labelledby="offer-title" data-offer={offer.job_id} data-state={state}>
      <h2 id="offer-title">{gone ? "Offer closed" : "New job offer"}</h2>
      <p class="offer-meta">
        <span>{offer.skill}</span> · <span>{distance(offer.distance_m)} away</span>
      </p>
      <p class="offer-description">{offer.description || "No description."}</p>
      <Photos session={session} ids={photos} label="Photo of the job" />
      {!gone ? (
        <p class="countdown" role="timer" aria-live="off" data-left={left}>
          Answer within <strong>{countdown(left)}</strong>
        </p>
      ) : (
        <p class="notice" role="status">
          {gone === "expired"
            ? "This offer expired before it was answered."
            : gone === "cancelled"
              ? "The resident cancelled this request."
              : gone === "declined"
                ? "You declined this offer."
                : "This offer is no longer open."}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!gone ? (
        <div class="actions">
          <button type="button" class="primary" onClick={() => step("accept")} disabled={!!busy}>
            {busy === "accept" ? "Accepting…" : "Accept"}
          </button>
          <button type="button" onClick={() => step("decline")} disabled={!!busy}>
            {busy === "decline" ? "Declining…" : "Decline"}
          </button>
        </div>
      ) : (
        <button type="button" onClick={() => session.store.dispatch({ type: "offer_done", job_id: offer.job_id, why: "accepted" })}>
          Dismiss
        </button>
      )}
    </section>
  );
}

function ActiveJob({ session, job, position, onDone }: { session: Session; job: Job; position: Sent | null; onDone: (id: string) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const step = async (s: "arrive" | "complete") => {
    setBusy(true);
    setError(null);
    try {
      const j = await unwrap(session.d.rest.POST("/v1/jobs/{id}/{step}", { params: { path: { id: job.id, step: s } } }));
      session.store.dispatch({ type: "job", job: j });
      if (s === "complete") onDone(j.id);
    } catch (e) {
      setError(describe(e));
    }
    setBusy(false);
  };
  const pins: Pin[] = [{ id: "job", lat: job.lat, lng: job.lng, kind: "job", label: "The job" }];
  if (position) pins.push({ id: "me", lat: position.lat, lng: position.lng, kind: "me", label: "You" });
  return (
    <section class="card active" aria-labelledby="active-title" data-job={job.id} data-status={job.status}>
      <h2 id="active-title">{job.status === "accepted" ? "On the way" : "On site"}</h2>
      <p>
        <strong>{job.skill}</strong> · {job.description || "No description."}
      </p>
      {job.urgency && <p class="muted">Urgency: {job.urgency}</p>}
      <MapView label="Map of the job and your position" pins={pins} />
      <p class="nav-links">
        <a href={geoUri(job)}>Navigate (maps app)</a>
        {" · "}
        <a href={osmUrl(job)} target="_blank" rel="noopener noreferrer">
          Open in OpenStreetMap
        </a>
      </p>
      <Photos session={session} ids={job.attachments ?? []} label="Photo of the job" />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="actions">
        {job.status === "accepted" && (
          <button type="button" class="primary" onClick={() => step("arrive")} disabled={busy}>
            {busy ? "Saving…" : "I have arrived"}
          </button>
        )}
        {job.status === "arrived" && (
          <button type="button" class="primary" onClick={() => step("complete")} disabled={busy}>
            {busy ? "Saving…" : "Complete the job"}
          </button>
        )}
      </div>
      {job.status === "arrived" && job.arrived_at && <p class="muted">On site since {clock(job.arrived_at)}: the fare counts from then.</p>}
    </section>
  );
}

/** The parts the active job needs, and the van's stock (`GET /v1/stock?location=van:<id>`). */
function VanStock({ session, parts }: { session: Session; parts: ReadonlyArray<{ part_id: string; qty: number }> }) {
  const [balances, setBalances] = useState<Balance[] | null>(null);
  const [catalogue, setCatalogue] = useState<Record<string, Part>>({});
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const need = parts.map((p) => `${p.part_id}:${p.qty}`).join(",");
  useEffect(() => {
    if (!open && !parts.length) return;
    setError(null);
    Promise.all([
      unwrap(session.d.rest.GET("/v1/stock", { params: { query: { location: `van:${session.user.id}`, limit: "500" } } })),
      unwrap(session.d.rest.GET("/v1/parts", { params: { query: { limit: "500" } } })),
    ]).then(
      ([s, p]) => {
        setBalances(s.balances);
        setCatalogue(Object.fromEntries(p.parts.map((x) => [x.id, x])));
      },
      (e) => setError(describe(e)),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session, open, need]);
  const name = (id: string) => (catalogue[id] ? `${catalogue[id]!.name} (${catalogue[id]!.sku})` : id);
  const inVan = (id: string) => balances?.find((b) => b.part_id === id)?.available ?? 0;
  return (
    <Section title="Parts and van stock" id="stock">
      {parts.length > 0 && (
        <>
          <h3>This job needs</h3>
          <ul class="cards" aria-label="Parts this job needs">
            {parts.map((p) => (
              <li class="card" key={p.part_id}>
                <strong>
                  {p.qty} × {name(p.part_id)}
                </strong>
                {balances && <span class={inVan(p.part_id) >= p.qty ? "muted" : "error"}>{inVan(p.part_id)} available in your van</span>}
              </li>
            ))}
          </ul>
        </>
      )}
      {!open && !parts.length ? (
        <button type="button" onClick={() => setOpen(true)}>
          Show my van's stock
        </button>
      ) : (
        <>
          <h3>In my van</h3>
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          {!balances && !error && <Loading what="your van's stock" />}
          {balances && !balances.length && <p class="muted">Your van holds no stock.</p>}
          {balances && balances.length > 0 && (
            <table class="stock">
              <caption class="visually-hidden">Stock in my van</caption>
              <thead>
                <tr>
                  <th scope="col">Part</th>
                  <th scope="col">On hand</th>
                  <th scope="col">Reserved</th>
                  <th scope="col">Available</th>
                </tr>
              </thead>
              <tbody>
                {balances.map((b) => (
                  <tr key={b.part_id}>
                    <th scope="row">{name(b.part_id)}</th>
                    <td>{b.on_hand}</td>
                    <td>{b.reserved}</td>
                    <td>{b.available}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </Section>
  );
}
