// Real redis-server processes for the Redis backend's tests and benchmark: each on a free loopback
// port, in a temp directory of its own, with the append-only file on; stopped by pid. A 3-master
// cluster is made of three such servers joined by redis-cli. Debian's redis-server must be
// installed (.ci/run installs it).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** How long a server may take to answer PING after its start (an AOF replay of a few MB included). */
const START_TIMEOUT_MS = 15_000;

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly pid: number;
  /** Ends the server with `signal` and waits for its exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (its AOF replayed). */
  restart(): Promise<void>;
}

function redisServerBinary(): string {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (fs.existsSync(p)) return p;
  throw new Error("The Redis backend's tests and benchmark need redis-server (Debian's \"redis-server\" package; .ci/run installs it)");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Sends one inline command and resolves with the first reply line (or rejects). */
export function rawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        clearTimeout(timer);
        sock.destroy();
        resolve(buf.slice(0, buf.indexOf('\r\n')));
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.write(`${command}\r\n`);
  });
}

async function waitForPing(port: number, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server on port ${port} exited at start: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    try {
      if ((await rawCommand(port, 'PING', 200)) === '+PONG') return;
    } catch {
      // Not listening yet, or still loading its AOF.
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts a redis-server in `dir` (created if missing); `extra` arguments go after the defaults. */
export async function startRedis(dir: string, extra: readonly string[] = []): Promise<RedisServer> {
  const bin = redisServerBinary();
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const logFile = path.join(dir, 'redis.log');
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--save', '', '--logfile', logFile, ...extra];
  let child: ChildProcess;
  const launch = async (): Promise<void> => {
    child = spawn(bin, args, { stdio: 'ignore' });
    await waitForPing(port, child, logFile);
  };
  await launch();
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get pid() {
      return child.pid!;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid!, signal);
      await exited;
    },
    async restart() {
      await launch();
    },
  };
  return server;
}

export interface RedisCluster {
  readonly nodes: RedisServer[];
  /** A node's URL: the client discovers the others from it. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Three masters on three loopback ports, slots spread evenly, no replicas. */
export async function startRedisCluster(dir: string): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startRedis(path.join(dir, `node-${i}`), ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000']));
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore', timeout: 30_000 });
  // Every node must agree the cluster is up before clients use it.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (const n of nodes) {
    for (;;) {
      const info = execFileSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' });
      if (/cluster_state:ok/.test(info)) break;
      if (Date.now() > deadline) throw new Error(`cluster node ${n.port} is not ok: ${info}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    nodes,
    url: nodes[0]!.url,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

/** The port of the master holding `key`'s slot. */
export function masterPortOf(cluster: RedisCluster, key: string): number {
  const slot = Number(execFileSync('redis-cli', ['-p', String(cluster.nodes[0]!.port), 'cluster', 'keyslot', key], { encoding: 'utf8' }).trim());
  for (const n of cluster.nodes) {
    // `<id> <ip:port@cport> myself,master - 0 0 <epoch> connected <from>-<to> ...`
    const mine = execFileSync('redis-cli', ['-p', String(n.port), 'cluster', 'nodes'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.includes('myself'))!;
    const ranges = mine.split(' ').slice(8);
    for (const r of ranges) {
      const [from, to = from] = r.split('-').map(Number);
      if (slot >= from! && slot <= to!) return n.port;
    }
  }
  throw new Error(`no master for slot ${slot}`);
}
