/**
 * Server-sent events, one line at a time (line endings already stripped). Only what LLM
 * servers use: `data:` fields joined by "\n", a blank line ends an event, `:` lines are
 * comments, other fields (`event:`, `id:`, `retry:`) are ignored.
 */
export class SseParser {
  private data: string[] = [];

  /** Feeds one line; returns the event's data when this line completes an event. */
  push(line: string): string | undefined {
    if (line === '') return this.flush();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== 'data') return undefined;
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.data.push(value);
    return undefined;
  }

  /**
   * Ends the pending event, if any. Called on a blank line and at the end of the body: some
   * servers close right after `data: [DONE]` without the final blank line.
   */
  flush(): string | undefined {
    if (this.data.length === 0) return undefined;
    const out = this.data.join('\n');
    this.data = [];
    return out;
  }
}
