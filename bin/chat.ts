import readline from 'node:readline';
import { parseArgs } from './args.js';
import type { CommandEnv } from './commands.js';
import { cliSession, describeError } from '../src/sdk/cli-session.js';
import type { AgentClient } from '../src/sdk/client.js';
import type { ChatFinal } from '../src/sdk/types.js';

export const CHAT_HELP = `Usage: panthers chat [--nft ID] [--message TEXT] [--conversation ID] [--ws]
                     [--url URL] [--session FILE] [--data-dir DIR]

Chats with the agent of an NFT (default: the session's NFT), printing the answer as it streams.
With --message, sends one message and exits (for scripts); otherwise reads one message per line
from stdin (/new starts a new conversation, /clear clears this one, /quit or end of input exits).
--ws streams over the WebSocket instead of server-sent events.`;

export async function chatCommand(argv: string[], env: CommandEnv): Promise<number> {
  const { flags } = parseArgs(argv);
  if (flags.help) {
    console.log(CHAT_HELP);
    return 0;
  }
  const { client, nft } = cliSession(flags, () => env.loadConfig().dataDir);
  if (!nft) {
    console.error(CHAT_HELP);
    return 2;
  }
  const agent = client.agent(nft);
  const overWs = flags.ws === true;
  let conversation = typeof flags.conversation === 'string' ? flags.conversation : undefined;

  if (typeof flags.message === 'string') {
    try {
      const final = await turn(agent, flags.message, conversation, overWs);
      process.stderr.write(`[conversation ${final.conversation_id} · ${final.tokens_used} tokens${final.incomplete ? ' · incomplete' : ''}]\n`);
      return 0;
    } catch (e) {
      process.stdout.write('\n');
      console.error(`panthers: ${describeError(e)}`);
      return 1;
    }
  }

  const interactive = Boolean(process.stdin.isTTY);
  const rl = readline.createInterface({ input: process.stdin, terminal: interactive, output: interactive ? process.stderr : undefined });
  const prompt = () => interactive && process.stderr.write('you> ');
  let current: AbortController | undefined;
  // Ctrl-C stops the answer being written; a second one (or one at the prompt) quits.
  rl.on('SIGINT', () => {
    if (current && !current.signal.aborted) current.abort();
    else rl.close();
  });
  if (interactive) process.stderr.write(`Chatting with the agent of NFT ${nft}. /new, /clear, /quit.\n`);
  prompt();
  let failures = 0;
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '/quit' || line === '/exit') break;
    if (line === '') {
      prompt();
      continue;
    }
    if (line === '/new') {
      conversation = undefined;
      process.stderr.write('[new conversation]\n');
    } else if (line === '/clear') {
      if (conversation) {
        try {
          const r = await agent.clear(conversation);
          process.stderr.write(`[cleared ${r.deleted} messages]\n`);
        } catch (e) {
          console.error(`panthers: ${describeError(e)}`);
        }
      }
    } else {
      current = new AbortController();
      try {
        const final = await turn(agent, line, conversation, overWs, current.signal);
        conversation = final.conversation_id;
        failures = 0;
      } catch (e) {
        process.stdout.write('\n');
        console.error(`panthers: ${describeError(e)}`);
        failures++;
      }
      current = undefined;
    }
    prompt();
  }
  rl.close();
  return failures > 0 ? 1 : 0;
}

/** One message: the answer's chunks to stdout as they arrive, then a newline. */
async function turn(agent: AgentClient, message: string, conversation: string | undefined, overWs: boolean, signal?: AbortSignal): Promise<ChatFinal> {
  const req = { message, conversation_id: conversation };
  const stream = overWs ? agent.chatOverWs(req, { signal }) : agent.chatStream(req, { signal });
  for await (const { content } of stream) process.stdout.write(content);
  process.stdout.write('\n');
  return stream.final;
}
