/**
 * The data directory (SPEC §8): nexus.toml, node.key (Ed25519, 0600),
 * admin.token (0600), vault.db, logs and the pid file. `init` creates only
 * what is missing and never overwrites what an operator already has.
 */
import { fs, path, writeFileDurable } from '../runtime/fs.ts';
import { nodeCrypto, randomBytes } from '../runtime/crypto.ts';
import { env } from '../runtime/process.ts';
import { parseConfig, defaultConfigText, type Config } from './config.ts';

export interface DataDir {
  dir: string;
  configFile: string;
  keyFile: string;
  tokenFile: string;
  vaultFile: string;
  pidFile: string;
  logDir: string;
  proxyKeyFile: string;
}

export function dataDir(dir?: string, configFile?: string): DataDir {
  const root = path.resolve(dir ?? env('NEXUS_DATA') ?? 'nexus-data');
  return {
    dir: root,
    configFile: path.resolve(configFile ?? env('NEXUS_CONFIG') ?? path.join(root, 'nexus.toml')),
    keyFile: path.join(root, 'node.key'),
    tokenFile: path.join(root, 'admin.token'),
    vaultFile: path.join(root, 'vault.db'),
    pidFile: path.join(root, 'nexus.pid'),
    logDir: path.join(root, 'logs'),
    proxyKeyFile: path.join(root, 'proxy.key'),
  };
}

export interface NodeKey {
  privateKey: nodeCrypto.KeyObject;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

/** Creates whatever of the data directory is missing; returns what it created. */
export function initDataDir(d: DataDir): string[] {
  const created: string[] = [];
  if (!fs.existsSync(d.dir)) {
    fs.mkdirSync(d.dir, { recursive: true, mode: 0o700 });
    created.push(d.dir);
  }
  fs.mkdirSync(d.logDir, { recursive: true });
  if (!fs.existsSync(d.keyFile)) {
    const { privateKey } = nodeCrypto.generateKeyPairSync('ed25519');
    writeFileDurable(d.keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
    created.push(d.keyFile);
  }
  if (!fs.existsSync(d.tokenFile)) {
    writeFileDurable(d.tokenFile, `${Buffer.from(randomBytes(32)).toString('base64url')}\n`, 0o600);
    created.push(d.tokenFile);
  }
  if (!fs.existsSync(d.proxyKeyFile)) {
    writeFileDurable(d.proxyKeyFile, `${Buffer.from(randomBytes(32)).toString('base64url')}\n`, 0o600);
    created.push(d.proxyKeyFile);
  }
  if (!fs.existsSync(d.configFile)) {
    const origin = `nexus.local/${Buffer.from(loadNodeKey(d).publicKey.subarray(0, 6)).toString('hex')}`;
    writeFileDurable(d.configFile, defaultConfigText(origin), 0o644);
    created.push(d.configFile);
  }
  return created;
}

export function loadNodeKey(d: DataDir): NodeKey {
  const privateKey = nodeCrypto.createPrivateKey(fs.readFileSync(d.keyFile, 'utf8'));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${d.keyFile} is not an Ed25519 key`);
  const spki = nodeCrypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(spki.length - 32)) };
}

export function loadAdminToken(d: DataDir): string {
  const token = fs.readFileSync(d.tokenFile, 'utf8').trim();
  if (token.length < 16) throw new Error(`${d.tokenFile} holds no usable admin token`);
  return token;
}

export function loadConfig(d: DataDir): Config {
  return parseConfig(fs.readFileSync(d.configFile, 'utf8'), d.configFile, 'nexus.local/node');
}

/** The HMAC key of X-Nexus-Attestation: the text of proxy.key (shared with the upstreams). */
export function loadProxyKey(d: DataDir): string {
  const key = fs.readFileSync(d.proxyKeyFile, 'utf8').trim();
  if (key.length < 32) throw new Error(`${d.proxyKeyFile} holds no usable proxy key`);
  return key;
}
