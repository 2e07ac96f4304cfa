/**
 * Telegram Mini App initData (SPEC §5.3): `Authorization: tma <initData>`,
 * HMAC-SHA256 with key HMAC("WebAppData", bot token) over the sorted
 * data-check-string, compared in constant time, with an auth_date max age.
 */
import { nodeCrypto, timingSafeEqual } from '../../runtime/crypto.ts';
import { SentryRejection, type Identity, type IdentityVerifier, type RequestFacts } from '../../sentry/identity.ts';

export interface TelegramOptions {
  botToken: string;
  /** Max age of auth_date in seconds; 0 turns the check off (old test vectors only). */
  maxAgeS: number;
  now?: () => number;
}

const PREFIX = /^tma\s+/i;

/** The hex hash Telegram puts in initData for these fields. */
export function initDataHash(params: URLSearchParams, botToken: string): string {
  const secret = nodeCrypto.createHmac('sha256', 'WebAppData').update(botToken).digest();
  const pairs = [...params.entries()].filter(([k]) => k !== 'hash').map(([k, v]) => `${k}=${v}`).sort();
  return nodeCrypto.createHmac('sha256', secret).update(pairs.join('\n')).digest('hex');
}

export function telegramVerifier(options: TelegramOptions): IdentityVerifier {
  const now = options.now ?? Date.now;
  return {
    method: 'telegram',
    applies: (f) => PREFIX.test(f.request.headers.get('authorization') ?? ''),
    verify(f: RequestFacts): Identity {
      const initData = (f.request.headers.get('authorization') ?? '').replace(PREFIX, '');
      const params = new URLSearchParams(initData);
      const hash = params.get('hash') ?? '';
      if (!/^[0-9a-f]{64}$/.test(hash) || params.getAll('hash').length !== 1) throw new SentryRejection('INITDATA_INVALID', 401, 'initData carries no valid hash');
      const want = initDataHash(params, options.botToken);
      if (!timingSafeEqual(Buffer.from(want, 'hex'), Buffer.from(hash, 'hex'))) throw new SentryRejection('INITDATA_INVALID', 401, 'initData hash does not verify for this bot');
      const authDate = Number(params.get('auth_date'));
      if (!Number.isSafeInteger(authDate)) throw new SentryRejection('INITDATA_INVALID', 401, 'initData has no auth_date');
      if (options.maxAgeS > 0 && now() / 1000 - authDate > options.maxAgeS) throw new SentryRejection('INITDATA_EXPIRED', 401, `initData is older than ${options.maxAgeS} s`);
      let id: unknown;
      try {
        id = (JSON.parse(params.get('user') ?? 'null') as { id?: unknown } | null)?.id;
      } catch {
        id = undefined;
      }
      if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new SentryRejection('INITDATA_INVALID', 401, 'initData names no user id');
      return { subject: `tg:${id}`, method: 'telegram', evidence: new TextEncoder().encode(initData) };
    },
  };
}
