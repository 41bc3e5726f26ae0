/**
 * The worker's maintenance logs: the schedules assigned to them, a log of
 * a visit (notes, issues found, photos; `POST /v1/logs`), and the logs
 * already written (`GET /v1/logs`).
 * @module
 */
import { unwrap, type components } from "@dispatchd/client";
import { useEffect, useState } from "preact/hooks";
import { clock } from "../format.js";
import { PhotoPicker, uploadedIds, uploading, type Upload } from "../photos.js";
import { describe, type Session } from "../session.js";
import { FieldError, FormError, Loading, Photos, Section, errorsFrom, useRetry, type Errors } from "../ui.js";

type Schedule = components["schemas"]["ScheduleView"];
type Log = components["schemas"]["LogView"];
type Issues = components["schemas"]["IssuesFound"];

const FIELDS = ["schedule_id", "notes", "issues_found", "attachments", "photos", "performed_at"] as const;

export function Logs({ session }: { session: Session }) {
  const [schedules, setSchedules] = useState<Schedule[] | null>(null);
  const [logs, setLogs] = useState<Log[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [photos, setPhotos] = useState<Upload[]>([]);
  const [issues, setIssues] = useState<Issues>("none");
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);

  const load = () => {
    setError(null);
    Promise.all([
      unwrap(session.d.rest.GET("/v1/schedules", { params: { query: { limit: "500" } } })),
      unwrap(session.d.rest.GET("/v1/logs", { params: { query: { limit: "100" } } })),
    ]).then(
      ([s, l]) => {
        setSchedules(s.schedules);
        setLogs(l.logs);
      },
      (e) => setError(describe(e)),
    );
  };
  useEffect(load, [session]);
  useRetry(session, !!error, load);
  const title = (id: string) => schedules?.find((s) => s.id === id)?.title ?? id;

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    if (uploading(photos)) return setErrors({ photos: "photos: wait until the photos are uploaded" });
    setBusy(true);
    setErrors({});
    setSaved(null);
    try {
      const notes = String(f.get("notes") ?? "").trim();
      await unwrap(
        session.d.rest.POST("/v1/logs", {
          body: { schedule_id: String(f.get("schedule_id")), issues_found: issues, attachments: uploadedIds(photos), ...(notes ? { notes } : {}) },
        }),
      );
      form.reset();
      setPhotos([]);
      setIssues("none");
      setSaved("The visit is logged.");
      load();
    } catch (err) {
      setErrors(errorsFrom(err, FIELDS));
    }
    setBusy(false);
  };

  return (
    <>
      <h1 tabIndex={-1}>Maintenance logs</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!schedules && !error && <Loading what="your schedules" />}
      {schedules && !schedules.length && <p class="muted">No maintenance schedules are assigned to you.</p>}
      {schedules && schedules.length > 0 && (
        <Section title="Log a visit" id="log-visit">
          <form onSubmit={submit} noValidate aria-label="Log a visit">
            <div class="field">
              <label for="schedule_id">Schedule</label>
              <select id="schedule_id" name="schedule_id" aria-describedby={errors["schedule_id"] ? "schedule_id-error" : undefined}>
                {schedules.map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.title} — {s.status}, due {clock(s.next_due_at)}
                  </option>
                ))}
              </select>
              <FieldError id="schedule_id" error={errors["schedule_id"]} />
            </div>
            <div class="field">
              <label for="notes">Notes</label>
              <textarea id="notes" name="notes" rows={3} aria-describedby={errors["notes"] ? "notes-error" : undefined} />
              <FieldError id="notes" error={errors["notes"]} />
            </div>
            <fieldset class="choice">
              <legend>Issues found</legend>
              {(["none", "minor", "major"] as const).map((v) => (
                <label key={v}>
                  <input type="radio" name="issues_found" value={v} checked={issues === v} onChange={() => setIssues(v)} /> {v}
                </label>
              ))}
              <FieldError id="issues_found" error={errors["issues_found"]} />
            </fieldset>
            <PhotoPicker session={session} id="photos" label="Photos" items={photos} onChange={setPhotos} error={errors["photos"] ?? errors["attachments"]} />
            <FormError errors={errors} />
            {saved && (
              <p class="notice" role="status">
                {saved}
              </p>
            )}
            <button class="primary" type="submit" disabled={busy}>
              {busy ? "Saving…" : "Save log"}
            </button>
          </form>
        </Section>
      )}
      <Section title="My logs" id="my-logs">
        {!logs && !error && <Loading what="your logs" />}
        {logs && !logs.length && <p class="muted">No logs yet.</p>}
        {logs && logs.length > 0 && (
          <ul class="cards" aria-label="My logs">
            {logs.map((l) => (
              <li class="card" key={l.id}>
                <strong>{title(l.schedule_id)}</strong>
                <span class={`issues issues-${l.issues_found}`}>Issues: {l.issues_found}</span>
                <span class="muted">{clock(l.performed_at)}</span>
                {l.notes && <p>{l.notes}</p>}
                <Photos session={session} ids={l.attachments} label="Log photo" />
              </li>
            ))}
          </ul>
        )}
      </Section>
    </>
  );
}
