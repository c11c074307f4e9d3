import { useEffect, useRef, useState } from "preact/hooks";

export type Connection = "connecting" | "live" | "reconnecting";

/**
 * Follows a server-sent event stream while the component lives: `handlers` get each event's parsed
 * data by event name. EventSource reconnects by itself (with Last-Event-ID); the state says whether the
 * stream is up.
 */
export function useEventStream(
  url: string | undefined,
  handlers: Record<string, (data: unknown) => void>,
): Connection {
  const [state, setState] = useState<Connection>("connecting");
  const current = useRef(handlers);
  current.current = handlers;
  useEffect(() => {
    if (!url) return;
    setState("connecting");
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => setState("live");
    source.onerror = () => setState("reconnecting");
    const names = Object.keys(current.current);
    const listeners = names.map((name) => {
      const listener = (e: MessageEvent<string>) => {
        let data: unknown;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        current.current[name]?.(data);
      };
      source.addEventListener(name, listener);
      return [name, listener] as const;
    });
    return () => {
      for (const [name, listener] of listeners) source.removeEventListener(name, listener);
      source.close();
    };
    // The handler names are fixed per call site; the URL decides the stream.
  }, [url]);
  return state;
}

/**
 * Loads data with `load` now, and again whenever `reload()` is called; reloads asked for while one runs
 * are folded into one more, so a burst of events costs two requests, not one per event.
 */
export function useLoader<T>(
  load: () => Promise<T>,
  deps: unknown[],
): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const state = useRef({ running: false, again: false, generation: 0 });
  const loadRef = useRef(load);
  loadRef.current = load;

  const run = async (generation: number) => {
    const s = state.current;
    if (s.running) {
      s.again = true;
      return;
    }
    s.running = true;
    try {
      do {
        s.again = false;
        try {
          const value = await loadRef.current();
          if (generation === s.generation) {
            setData(value);
            setError(undefined);
          }
        } catch (err) {
          if (generation === s.generation) setError(err instanceof Error ? err.message : String(err));
        }
      } while (s.again && generation === s.generation);
    } finally {
      s.running = false;
    }
  };

  useEffect(() => {
    state.current.generation++;
    state.current.running = false;
    setData(undefined);
    void run(state.current.generation);
  }, deps);

  return { data, error, reload: () => void run(state.current.generation) };
}

/** Re-renders every `ms` (for "12 s ago" labels). */
export function useTick(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1_000));
  if (s < 60) return `${s} s ago`;
  if (s < 3_600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3_600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export const short = (id: string | undefined) => (id ? id.slice(0, 8) : "—");
