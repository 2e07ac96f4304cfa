/**
 * Tunnel supervision (SPEC §7): runs the operator's installed `cloudflared` or
 * `ngrok` against the node's public port, reads the public URL from its output,
 * and restarts it with backoff when it dies. Nexus ships no tunnel binary.
 */
import { spawn, type ChildProcess } from '../runtime/process.ts';
import { fs, path, isWindows } from '../runtime/fs.ts';

export type TunnelKind = 'cloudflared' | 'ngrok';

export const INSTALL_HINTS: Record<TunnelKind, string> = {
  cloudflared: 'install cloudflared (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/; Debian/Raspberry Pi: the cloudflared .deb; Windows: winget install Cloudflare.cloudflared) or pass --binary PATH',
  ngrok: 'install ngrok (https://ngrok.com/download; then `ngrok config add-authtoken <token>`) or pass --binary PATH',
};

export function tunnelArgs(kind: TunnelKind, localUrl: string): string[] {
  return kind === 'cloudflared'
    ? ['tunnel', '--no-autoupdate', '--url', localUrl]
    : ['http', localUrl, '--log', 'stdout', '--log-format', 'json'];
}

const URL_PATTERNS = [
  /https:\/\/[a-z0-9-]+\.trycloudflare\.com/i,
  /"url":"(https:\/\/[^"]+)"/,
  /https:\/\/[a-z0-9-]+\.(?:ngrok-free\.app|ngrok\.app|ngrok\.io|ngrok-free\.dev)/i,
];

/** The public URL announced in a chunk of tunnel output, if any. */
export function parsePublicUrl(text: string): string | undefined {
  for (const re of URL_PATTERNS) {
    const m = re.exec(text);
    if (m) return m[1] ?? m[0];
  }
  return undefined;
}

/** Finds an executable on PATH (with Windows extensions), or undefined. */
export function findExecutable(name: string): string | undefined {
  if (name.includes('/') || name.includes('\\')) return fs.existsSync(name) ? path.resolve(name) : undefined;
  const exts = isWindows ? (process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const ext of exts) {
      const file = path.join(dir, name + ext);
      try {
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

export interface TunnelState {
  kind: TunnelKind;
  url: string | null;
  pid: number | null;
  restarts: number;
  updatedAt: string;
}

export interface SupervisorOptions {
  kind: TunnelKind;
  binary: string;
  localUrl: string;
  onState: (s: TunnelState) => void;
  onOutput?: (line: string) => void;
  /** Backoff after the n-th consecutive crash: min(maxMs, baseMs · 2^(n−1)). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

export class TunnelSupervisor {
  readonly #o: SupervisorOptions;
  #child: ChildProcess | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #state: TunnelState;
  #crashes = 0;
  #stopped = false;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#state = { kind: options.kind, url: null, pid: null, restarts: 0, updatedAt: new Date().toISOString() };
  }

  get state(): TunnelState {
    return { ...this.#state };
  }

  start(): void {
    const child = spawn(this.#o.binary, tunnelArgs(this.#o.kind, this.#o.localUrl), { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    this.#child = child;
    const startedAt = Date.now();
    this.#update({ pid: child.pid ?? null, url: null });
    const read = (chunk: Buffer) => {
      const text = chunk.toString();
      for (const line of text.split('\n')) if (line.trim()) this.#o.onOutput?.(line);
      const url = parsePublicUrl(text);
      if (url && url !== this.#state.url) this.#update({ url });
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.on('error', () => {});
    child.on('exit', () => {
      if (this.#stopped) return;
      // A run that lasted a minute was healthy: start counting crashes anew.
      this.#crashes = Date.now() - startedAt > 60_000 ? 1 : this.#crashes + 1;
      const delay = Math.min(this.#o.maxBackoffMs ?? 60_000, (this.#o.baseBackoffMs ?? 1000) * 2 ** (this.#crashes - 1));
      this.#update({ pid: null, url: null });
      this.#timer = setTimeout(() => {
        this.#update({ restarts: this.#state.restarts + 1 });
        this.start();
      }, delay);
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#child?.kill();
  }

  #update(p: Partial<TunnelState>): void {
    this.#state = { ...this.#state, ...p, updatedAt: new Date().toISOString() };
    this.#o.onState(this.state);
  }
}
