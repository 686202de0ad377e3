import { ApiError } from '../../src/errors.js';
import type { DeployContext, DeploySpec } from '../../src/providers/provider.js';
import { ProviderHttpError } from './http-client.js';

/**
 * What the Akash and SecretVM adapters share beyond HTTP: monotonic progress, the
 * deterministic resource name, keeping secrets out of messages, and one error vocabulary.
 */

/** Reports progress that never goes back (a resumed deploy may re-enter an earlier step). */
export function progressReporter(ctx: DeployContext): (progress: number, message: string) => void {
  let last = -1;
  return (progress, message) => {
    if (progress <= last) return;
    last = progress;
    ctx.progress(progress, message);
  };
}

/**
 * A name that is the same every time for one deployment of one NFT, so a create whose answer was
 * lost can be found again: panthers-agent-<nft>-<first 8 of the deployment id>.
 */
export function resourceName(spec: DeploySpec): string {
  const nft = spec.nftTokenId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'nft';
  const dep = spec.deploymentId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 8);
  return `panthers-agent-${nft}-${dep}`;
}

/**
 * Replaces every secret value in a text (a provider may echo what we sent in its error), and a
 * secret's beginning where the text ends (the provider may have cut its own message there).
 */
export function secretScrubber(secrets: Record<string, string>): (text: string) => string {
  const values = Object.values(secrets).filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
  if (values.length === 0) return (t) => t;
  return (text) => {
    let out = text;
    for (const v of values) out = out.split(v).join('[redacted]');
    for (const v of values) {
      for (let k = v.length - 1; k >= 3; k--) {
        if (out.endsWith(v.slice(0, k))) {
          out = out.slice(0, out.length - k) + '[redacted]';
          break;
        }
      }
    }
    return out;
  };
}

/** Error messages stay short: scrubbed first, then cut. */
const MAX_MESSAGE = 300;
function short(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}...` : text;
}

export type FailureReason =
  | 'not_configured' | 'unauthorized' | 'insufficient_funds' | 'no_bids' | 'bid_lost' | 'not_ready'
  | 'timeout' | 'unreachable' | 'rate_limited' | 'provider_error' | 'rejected' | 'closed';

/** A failure the deployment ends with: the message is for humans, the reason for code. */
export function deployFailure(provider: string, reason: FailureReason, message: string, extra: Record<string, unknown> = {}): ApiError {
  const code = reason === 'timeout' ? 'TIMEOUT' : 'SERVICE_UNAVAILABLE';
  return new ApiError(code, message, { provider, reason, ...extra });
}

/**
 * Turns whatever a provider call threw into an ApiError with a clear message. Aborts pass
 * through untouched (the actor cancelled; it decides what that means).
 */
export function toProviderError(provider: string, service: string, e: unknown, scrub: (t: string) => string, signal?: AbortSignal): unknown {
  if (e instanceof ApiError) return e;
  if (signal?.aborted) return e;
  if (!(e instanceof ProviderHttpError)) {
    return deployFailure(provider, 'provider_error', short(scrub(`${service} call failed: ${e instanceof Error ? e.message : String(e)}`)));
  }
  const msg = short(scrub(e.message));
  const said = e.providerMessage ? short(scrub(e.providerMessage)) : '';
  if (e.timedOut) return deployFailure(provider, 'timeout', msg);
  if (e.status === 0) return deployFailure(provider, 'unreachable', msg);
  if (e.status === 401 || e.status === 403) {
    return deployFailure(provider, 'unauthorized', `${service} rejected the API key (HTTP ${e.status})${said ? `: ${said}` : ''}`);
  }
  if (e.status === 402 || /insufficient (funds|balance)/i.test(said)) {
    return deployFailure(provider, 'insufficient_funds', `${service} account has insufficient funds${said ? `: ${said}` : ''}`);
  }
  if (e.status === 429) return deployFailure(provider, 'rate_limited', `${service} kept rate limiting the requests: ${msg}`);
  if (e.status >= 500) return deployFailure(provider, 'provider_error', msg);
  return deployFailure(provider, 'rejected', msg, { status: e.status });
}

/** True when a POST failed in a way where it may have been carried out anyway. */
export function mayHaveHappened(e: unknown): boolean {
  return e instanceof ProviderHttpError && e.maybeApplied;
}
