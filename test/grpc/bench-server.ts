/**
 * Manual benchmark target (not a test): serves the gRPC API over an instant gateway — Range answers a fixed
 * pre-encoded one-key RangeResponse, writes go to the in-memory fake — so a load tool measures the API
 * layer's own cost per call. Prints `port=<n>` and runs until stdin closes or SIGTERM.
 *   node dist/test/grpc/bench-server.js [port]
 *   /tmp/gobench/bin/gobench --endpoints=127.0.0.1:<n> --conns=4 --clients=64 range foo --consistency=s --total=200000
 */
import { Registry } from 'prom-client';
import { startGrpcServer } from '../../src/api/grpc/server';
import { createEtcdMetrics } from '../../src/metrics/registry';
import { pb } from '../../src/wire/codec';
import { FakeKv, FakeMaintenance } from './fake-gateway';

async function main(): Promise<void> {
  const kv = new FakeKv();
  kv.instantRange = pb.RangeResponse.encode({
    header: kv.header(),
    kvs: [{ key: Buffer.from('foo'), value: Buffer.alloc(256, 0x61), createRevision: 1, modRevision: 1, version: 1 }],
    count: 1,
  }).finish();
  const port = Number(process.argv[2] ?? 0);
  const srv = await startGrpcServer({
    urls: [`http://127.0.0.1:${port}`],
    gateway: kv,
    maintenance: new FakeMaintenance(kv, () => `http://127.0.0.1:${srv.ports[0]}`),
    maxRequestBytes: 1.5 * 1024 * 1024,
    maxTxnOps: 128,
    metrics: createEtcdMetrics(new Registry()),
  });
  console.log(`port=${srv.ports[0]}`);
  const stop = (): void => {
    console.log(`ranges=${kv.ranges} proposals=${kv.proposals}`);
    void srv.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

void main();
