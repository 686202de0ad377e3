import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { ApiError } from './api';
import { sessionRefused } from './session';

/** An error as the console shows it: the spec's code and message, and how long to wait if limited. */
export interface Shown {
  code: string;
  message: string;
  retryAt?: number;
}

export function toShown(e: unknown): Shown {
  if (e instanceof ApiError) {
    return { code: e.code, message: e.message, retryAt: e.retryAfter ? Date.now() + e.retryAfter * 1000 : undefined };
  }
  const m = (e as Error)?.message;
  return { code: 'CLIENT_ERROR', message: typeof m === 'string' && m ? m : String(e) };
}

/** Seconds left until `at` (re-rendering each second), 0 once passed. */
export function useSecondsLeft(at: number | undefined): number {
  const [, tick] = useState(0);
  const left = at ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : 0;
  useEffect(() => {
    if (!left) return;
    const t = setTimeout(() => tick((n) => n + 1), 250);
    return () => clearTimeout(t);
  });
  return left;
}

/**
 * Runs one user action at a time and keeps its error. While a rate limit's wait runs, `waiting`
 * is the seconds left and the action's button stays disabled.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Shown | undefined>();
  const waiting = useSecondsLeft(error?.retryAt);
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);
  async function run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    setBusy(true);
    setError(undefined);
    try {
      return await fn();
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') return undefined;
      if (sessionRefused(e)) return undefined;
      if (alive.current) setError(toShown(e));
      return undefined;
    } finally {
      if (alive.current) setBusy(false);
    }
  }
  return { busy, error, waiting, run, setError, blocked: busy || waiting > 0 };
}

export function ErrorBox({ error, waiting }: { error?: Shown; waiting?: number }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <strong class="code">{error.code}</strong> <span>{error.message}{/[.!?]$/.test(error.message) ? '' : '.'}</span>
      {error.retryAt !== undefined && (
        <span class="wait">
          {' '}
          {waiting ? `Try again in ${waiting} s.` : 'You can try again now.'}
        </span>
      )}
    </div>
  );
}

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

export function shortAddress(a: string): string {
  return a.length > 16 ? `${a.slice(0, 8)}…${a.slice(-6)}` : a;
}
