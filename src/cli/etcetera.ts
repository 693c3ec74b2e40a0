#!/usr/bin/env node
/**
 * `etcetera`: start one member with etcd's flags (etcd: etcdmain). Flags, ETCD_* variables and --config-file
 * are parsed by src/cli/flags.ts; a bad flag prints one line and exits 2. SIGTERM/SIGINT stop the member
 * cleanly (pending requests fail with "etcdserver: server stopped", workers flush).
 */
import { runCliOrExit } from './flags';
import { createLogger } from '../log';
import { startMember } from '../server/member';

async function main(): Promise<void> {
  const config = runCliOrExit(process.argv.slice(2), process.env);
  const logger = createLogger(config.logLevel);
  for (const w of config.warnings) logger.warn(w);
  let member;
  try {
    member = await startMember(config, logger);
  } catch (e) {
    logger.fatal({ error: (e as Error).message }, 'failed to start member');
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'received signal; shutting down');
    member.stop().then(
      () => process.exit(0),
      (e: Error) => {
        logger.error({ error: e.message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  // etcd stops a member removed from the cluster (etcdctl member remove).
  member.server.events.once('removed', () => stop('removed from the cluster'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
