/**
 * The photo picker of a request or a log: the camera or the gallery
 * (`capture="environment"`, several at once), each file uploaded at once
 * (`POST /v1/attachments`) and shown from its local `blob:` URL while it
 * goes; the ids of the uploaded ones go into the job or log.
 * @module
 */
import { useEffect, useRef } from "preact/hooks";
import { upload } from "./api.js";
import { describe, type Session } from "./session.js";
import { FieldError } from "./ui.js";

/** One chosen file and how its upload went. */
export interface Upload {
  key: number;
  name: string;
  url: string;
  id?: string;
  error?: string;
}

let nextKey = 1;

/** The ids of the uploads that made it. */
export function uploadedIds(items: readonly Upload[]): string[] {
  return items.flatMap((u) => (u.id ? [u.id] : []));
}

/** Whether some upload is still under way. */
export function uploading(items: readonly Upload[]): boolean {
  return items.some((u) => !u.id && !u.error);
}

export function PhotoPicker(props: {
  session: Session;
  id: string;
  label: string;
  items: Upload[];
  onChange: (f: (items: Upload[]) => Upload[]) => void;
  error?: string | undefined;
}) {
  const { session, id, label, items, onChange, error } = props;
  // Object URLs of files still shown; revoked when dropped or unmounted.
  const urls = useRef(new Set<string>());
  useEffect(() => () => urls.current.forEach((u) => URL.revokeObjectURL(u)), []);

  const add = (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const files = [...(input.files ?? [])];
    input.value = "";
    for (const file of files) {
      const item: Upload = { key: nextKey++, name: file.name, url: URL.createObjectURL(file) };
      urls.current.add(item.url);
      onChange((xs) => [...xs, item]);
      upload(session, file).then(
        (fileId) => onChange((xs) => xs.map((x) => (x.key === item.key ? { ...x, id: fileId } : x))),
        (err) => onChange((xs) => xs.map((x) => (x.key === item.key ? { ...x, error: describe(err) } : x))),
      );
    }
  };
  const remove = (key: number) =>
    onChange((xs) => {
      const gone = xs.find((x) => x.key === key);
      if (gone) {
        URL.revokeObjectURL(gone.url);
        urls.current.delete(gone.url);
      }
      return xs.filter((x) => x.key !== key);
    });

  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        type="file"
        accept="image/*"
        capture="environment"
        multiple
        onChange={add}
        aria-describedby={error ? `${id}-error` : undefined}
      />
      {items.length > 0 && (
        <ul class="photos" aria-label={`${label}: chosen`}>
          {items.map((u, i) => (
            <li key={u.key} data-uploaded={u.id ? "true" : "false"}>
              <img class="thumb" src={u.url} alt={`Photo ${i + 1}: ${u.name}`} />
              <span class={u.error ? "error" : "muted"} role={u.error ? "alert" : undefined}>
                {u.error ? u.error : u.id ? "Uploaded" : "Uploading…"}
              </span>
              <button type="button" class="link" onClick={() => remove(u.key)} aria-label={`Remove photo ${i + 1}`}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <FieldError id={id} error={error} />
    </div>
  );
}
