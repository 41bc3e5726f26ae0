/**
 * The resident's live page of one request: the status timeline, the
 * engineer's name, their position and ETA on the map while on the way
 * (`tracking` messages, `worker_position` on reload), cancel; once done,
 * the fare, a rating and the payments.
 * @module
 */
import { unwrap, type components, type Job } from "@dispatchd/client";
import { useEffect, useState } from "preact/hooks";
import { clock, eta, isOpen, money, moneyRange, STATUS_TEXT, timeline } from "../format.js";
import { MapView, type Pin } from "../map.js";
import { describe, type Session } from "../session.js";
import { useStore } from "../store.js";
import { FieldError, FormError, Loading, Photos, Section, errorsFrom, useRetry, type Errors } from "../ui.js";

type Payment = components["schemas"]["PaymentView"];

export function JobPage({ session, id }: { session: Session; id: string }) {
  const job = useStore(session.store, (s) => s.jobs[id]);
  const track = useStore(session.store, (s) => s.tracks[id]);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    void session.refreshJob(id).then(
      () => setError(null),
      (e) => setError(describe(e)),
    );
  useEffect(() => {
    load();
    // After a reconnect's replay, read it again (worker_position, missed history).
    return session.socket.on("resumed", load);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session, id]);
  useRetry(session, !!error, load);

  if (!job) {
    return (
      <>
        <h1 tabIndex={-1}>Request</h1>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : (
          <Loading what="the request" />
        )}
      </>
    );
  }
  const pins: Pin[] = [{ id: "job", lat: job.lat, lng: job.lng, kind: "job", label: "The place of the request" }];
  if (track && job.status === "accepted") pins.push({ id: "worker", lat: track.lat, lng: track.lng, kind: "worker", label: `${job.worker_name ?? "The engineer"} on the way` });

  return (
    <>
      <h1 tabIndex={-1}>{job.description || job.skill}</h1>
      <p class={`status status-${job.status}`} data-status={job.status} role="status" aria-live="polite">
        {STATUS_TEXT[job.status]}
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {job.worker_id && (
        <p class="worker" data-worker-name={job.worker_name ?? ""}>
          Engineer: <strong>{job.worker_name ?? "assigned"}</strong>
        </p>
      )}
      {job.status === "accepted" && (
        <p class="eta" role="status" aria-live="polite" data-eta={track ? String(track.eta_s) : ""}>
          {track
            ? `${track.eta_s < 60 ? "Arrives in" : "Arrives in about"} ${eta(track.eta_s)} (as of ${clock(track.at)})`
            : "Waiting for the engineer's position…"}
        </p>
      )}
      <MapView label={job.status === "accepted" ? "Map of the request and the engineer on the way" : "Map of the request"} pins={pins} />
      <Section title="Progress" id="progress">
        <ol class="timeline">
          {timeline(job).map((s) => (
            <li key={s.key} class={`step-${s.state}`} aria-current={s.state === "current" ? "step" : undefined}>
              <span>{s.label}</span>
              {s.at && <time dateTime={s.at}>{clock(s.at)}</time>}
            </li>
          ))}
        </ol>
      </Section>
      <Section title="Details" id="details">
        <dl class="facts">
          <dt>Kind of work</dt>
          <dd>{job.skill}</dd>
          {job.urgency && (
            <>
              <dt>Urgency</dt>
              <dd>{job.urgency}</dd>
            </>
          )}
          {job.estimate_cents && (
            <>
              <dt>Estimate</dt>
              <dd>{moneyRange(job.estimate_cents)}</dd>
            </>
          )}
        </dl>
        <Photos session={session} ids={job.attachments ?? []} label="Photo" />
      </Section>
      {isOpen(job.status) && <Cancel session={session} job={job} />}
      {job.status === "completed" && <Completed session={session} job={job} />}
    </>
  );
}

function Cancel({ session, job }: { session: Session; job: Job }) {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const cancel = async () => {
    setBusy(true);
    try {
      const j = await unwrap(session.d.rest.POST("/v1/jobs/{id}/cancel", { params: { path: { id: job.id } }, body: {} }));
      session.store.dispatch({ type: "job", job: j });
      setAsking(false);
    } catch (e) {
      setError(describe(e));
    }
    setBusy(false);
  };
  return (
    <div class="cancel">
      {!asking ? (
        <button type="button" class="danger" onClick={() => setAsking(true)}>
          Cancel request
        </button>
      ) : (
        <div role="group" aria-label="Confirm cancelling">
          <p>Cancel this request?</p>
          <button type="button" class="danger" onClick={cancel} disabled={busy}>
            {busy ? "Cancelling…" : "Yes, cancel it"}
          </button>{" "}
          <button type="button" onClick={() => setAsking(false)}>
            Keep it
          </button>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function Completed({ session, job }: { session: Session; job: Job }) {
  const [payments, setPayments] = useState<Payment[] | null>(null);
  const [payError, setPayError] = useState<string | null>(null);
  const load = () => {
    setPayError(null);
    unwrap(session.d.rest.GET("/v1/jobs/{id}/payments", { params: { path: { id: job.id } } })).then(
      (r) => setPayments(r.payments),
      (e) => setPayError(describe(e)),
    );
  };
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(load, [session, job.id, job.paid_cents]);
  useRetry(session, !!payError, load);
  return (
    <>
      <Section title="Fare" id="fare">
        <p class="fare" data-fare={job.fare_cents ?? ""}>
          {job.fare_cents != null ? money(job.fare_cents) : "Not billed"}
          {job.paid_cents ? <span class="muted"> · paid {money(job.paid_cents)}</span> : null}
        </p>
      </Section>
      <Section title="Payments" id="payments">
        {payments === null && !payError && <Loading what="payments" />}
        {payError && (
          <p class="error" role="alert">
            {payError}
          </p>
        )}
        {payments && !payments.length && <p class="muted">No payments yet.</p>}
        {payments && payments.length > 0 && (
          <ul class="cards" aria-label="Payments">
            {payments.map((p) => (
              <li class="card" key={p.id}>
                <strong>{money(p.amount_cents)}</strong> <span class={`status pay-${p.status}`}>{p.status}</span>
                <span class="muted">{clock(p.updated_at)}</span>
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Rating session={session} job={job} />
    </>
  );
}

function Rating({ session, job }: { session: Session; job: Job }) {
  const [stars, setStars] = useState(0);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  if (job.rating) {
    return (
      <Section title="Your rating" id="rating">
        <p data-stars={job.rating.stars}>
          {"★".repeat(job.rating.stars)}
          {"☆".repeat(5 - job.rating.stars)} <span class="visually-hidden">{job.rating.stars} of 5 stars</span>
        </p>
        {job.rating.comment && <p>{job.rating.comment}</p>}
      </Section>
    );
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!stars) return setErrors({ stars: "stars: choose from 1 to 5" });
    const comment = String(new FormData(e.currentTarget as HTMLFormElement).get("comment") ?? "").trim();
    setBusy(true);
    setErrors({});
    try {
      const j = await unwrap(
        session.d.rest.POST("/v1/jobs/{id}/rating", { params: { path: { id: job.id } }, body: { stars, ...(comment ? { comment } : {}) } }),
      );
      session.store.dispatch({ type: "job", job: j });
    } catch (err) {
      setErrors(errorsFrom(err, ["stars", "comment"]));
      setBusy(false);
    }
  };
  return (
    <Section title="Rate the work" id="rating">
      <form onSubmit={submit} noValidate aria-label="Rate the work">
        <fieldset class="stars" aria-describedby={errors["stars"] ? "stars-error" : undefined}>
          <legend>Stars</legend>
          {[1, 2, 3, 4, 5].map((n) => (
            <label key={n}>
              <input type="radio" name="stars" value={n} checked={stars === n} onChange={() => setStars(n)} />
              <span aria-hidden="true">{"★".repeat(n)}</span>
              <span class="visually-hidden">
                {n} star{n > 1 ? "s" : ""}
              </span>
            </label>
          ))}
          <FieldError id="stars" error={errors["stars"]} />
        </fieldset>
        <div class="field">
          <label for="comment">Comment (optional)</label>
          <textarea id="comment" name="comment" rows={2} />
          <FieldError id="comment" error={errors["comment"]} />
        </div>
        <FormError errors={errors} />
        <button class="primary" type="submit" disabled={busy}>
          {busy ? "Sending…" : "Send rating"}
        </button>
      </form>
    </Section>
  );
}
