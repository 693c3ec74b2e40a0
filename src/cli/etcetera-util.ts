#!/usr/bin/env node
/**
 * `etcetera-util`: offline tools over snapshot files and stopped members, with etcdutl's interface (etcd 3.4's
 * `etcdctl snapshot restore|status` and `etcdctl defrag --data-dir`):
 *
 *   etcetera-util snapshot restore <file> [--data-dir] [--name] [--initial-cluster] [--initial-cluster-token]
 *                                  [--initial-advertise-peer-urls] [--skip-hash-check]
 *   etcetera-util snapshot status <file> [-w simple|json|table|fields]
 *   etcetera-util defrag --data-dir <dir>
 *
 * Errors print "Error: <etcd's message>" on stderr with etcdctl's exit codes (1 error, 4 unsupported output format,
 * 128 bad arguments). Snapshot files may come from etcd 3.4 or from etcetera (src/snapshot).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs from 'yargs/yargs';
import { restoreSnapshot } from '../snapshot/restore';
import { formatStatus, snapshotStatus } from '../snapshot/status';
import { defragDataDir } from '../snapshot/defrag';
import { bootstrapMembership, saveMembership } from '../server/membership';
import { parseInitialCluster } from './flags';

/** etcdctl's exit codes (ctlv3/command/error.go). */
const ExitCode = { Error: 1, BadFeature: 4, BadArgs: 128 } as const;

class ExitError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

const FORMATS = ['simple', 'json', 'table', 'fields'];

async function main(argv: string[]): Promise<void> {
  let failure: ExitError | null = null;
  const fail = (e: unknown, code: number = ExitCode.Error): never => {
    throw e instanceof ExitError ? e : new ExitError(code, (e as Error)?.message ?? String(e));
  };
  const parser = yargs(argv)
    .scriptName('etcetera-util')
    .parserConfiguration({ 'camel-case-expansion': true, 'boolean-negation': false })
    .command('snapshot <command>', 'Manages etcd node snapshots', (y) =>
      y
        .command('restore [file]', 'Restores an etcd member snapshot to an etcd directory', (c) =>
          c
            .positional('file', { type: 'string' })
            .option('data-dir', { type: 'string', describe: 'Path to the data directory' })
            .option('name', { type: 'string', default: 'default', describe: 'Human-readable name for this member' })
            .option('initial-cluster', { type: 'string', default: 'default=http://localhost:2380', describe: 'Initial cluster configuration for restore bootstrap' })
            .option('initial-cluster-token', { type: 'string', default: 'etcd-cluster', describe: 'Initial cluster token for the etcd cluster during restore bootstrap' })
            .option('initial-advertise-peer-urls', { type: 'string', default: 'http://localhost:2380', describe: "List of this member's peer URLs to advertise to the rest of the cluster" })
            .option('skip-hash-check', { type: 'boolean', default: false, describe: 'Ignore snapshot integrity hash value (required if copied from data directory)' })
            .option('remap-lease-ids', { type: 'boolean', default: false, describe: 'etcetera: give leases whose ID is above 2^53-1 (etcd grants such IDs) new IDs instead of refusing' }),
        async (a) => {
          if (typeof a.file !== 'string' || a._.length > 2) fail(new Error('snapshot restore requires exactly one argument'), ExitCode.BadArgs);
          try {
            // The new membership (one member per --initial-cluster entry, IDs from the peer URLs and the token): checked
            // before anything is written; saved as member/cluster.json once the store is restored.
            const membership = bootstrapMembership({
              localName: a.name,
              initialCluster: parseInitialCluster(a.initialCluster),
              advertisePeerUrls: a.initialAdvertisePeerUrls.split(',').filter((u) => u !== ''),
              advertiseClientUrls: [],
              clusterToken: a.initialClusterToken,
            });
            const r = await restoreSnapshot({
              file: a.file as string, dataDir: a.dataDir ?? `${a.name}.etcd`, skipHashCheck: a.skipHashCheck, remapLeaseIds: a.remapLeaseIds,
              writeMembership: (memberDir) => saveMembership(memberDir, membership),
            });
            const { localId: memberId, clusterId } = membership;
            process.stderr.write(`${JSON.stringify({
              level: 'info', msg: 'restored snapshot', path: a.file, 'data-dir': r.dataDir, revision: r.revision,
              'compact-revision': r.compactRevision, revisions: r.revisions, keys: r.keys, leases: r.leases,
              'member-id': memberId.toString(16), 'cluster-id': clusterId.toString(16),
              ...(r.remappedLeaseIds.length > 0 ? { 'remapped-lease-ids': Object.fromEntries(r.remappedLeaseIds) } : {}),
            })}\n`);
          } catch (e) {
            fail(e);
          }
        })
        .command('status [file]', 'Gets backend snapshot status of a given file', (c) =>
          c.positional('file', { type: 'string' }).option('write-out', { alias: 'w', type: 'string', default: 'simple', describe: 'set the output format (fields, json, simple, table)' }),
        (a) => {
          if (typeof a.file !== 'string' || a._.length > 2) fail(new Error('snapshot status requires exactly one argument'), ExitCode.BadArgs);
          if (!FORMATS.includes(a.writeOut)) fail(new Error('unsupported output format'), ExitCode.BadFeature);
          try {
            process.stdout.write(formatStatus(snapshotStatus(a.file as string), a.writeOut));
          } catch (e) {
            const err = e as NodeJS.ErrnoException;
            fail(err.code === 'ENOENT' ? new Error(`stat ${a.file}: no such file or directory`) : err);
          }
        })
        .demandCommand(1, ''),
    )
    .command('defrag', 'Defragments the storage of a stopped member (offline)', (c) =>
      c.option('data-dir', { type: 'string', describe: 'Data directory of the member to defragment' }),
    async (a) => {
      const dir = a.dataDir;
      if (typeof dir !== 'string' || dir === '') return fail(new Error('required flag(s) "data-dir" not set'), ExitCode.BadArgs);
      if (!fs.existsSync(path.join(dir, 'member'))) fail(new Error(`cannot open database at ${path.join(dir, 'member', 'mvcc')}: no such file or directory`));
      try {
        await defragDataDir(dir);
      } catch (e) {
        fail(e);
      }
    })
    .demandCommand(1, '')
    .strict()
    .help()
    .version(false)
    .fail((msg, err) => {
      failure = err instanceof ExitError ? err : new ExitError(ExitCode.BadArgs, err?.message ?? msg);
    });
  try {
    await parser.parseAsync();
  } catch (e) {
    failure ??= e instanceof ExitError ? e : new ExitError(ExitCode.Error, (e as Error).message);
  }
  if (failure !== null) {
    const f = failure as ExitError;
    process.stderr.write(`Error: ${f.message}\n`);
    process.exitCode = f.code;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`Error: ${(e as Error)?.message ?? String(e)}\n`);
  process.exitCode = ExitCode.Error;
});
