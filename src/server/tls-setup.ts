/**
 * TLS material of a member from its flags (etcd: embed.StartEtcd → configurePeerListeners /
 * configureClientListeners, Config.ClientSelfCert / PeerSelfCert, updateCipherSuites):
 *  - --cipher-suites checked and mapped (`unexpected TLS cipher suite "X"`);
 *  - --auto-tls / --peer-auto-tls generate a self-signed pair under <data-dir>/fixtures/{client,peer} unless
 *    certificate files were given (then a warning, as etcd);
 *  - an https:// client URL without certificate refuses to start with etcd's message, likewise an https:// peer
 *    URL; certificate flags with http:// URLs only log etcd's warning.
 */
import * as path from 'node:path';
import type { ServerConfig } from './config';
import type { Logger } from '../log';
import { TlsSource, tlsInfoEmpty, type TlsInfo } from '../tls/source';
import { opensslCipherList } from '../tls/cipher-suites';
import { selfCert } from '../tls/self-cert';
import { peerSecurity } from '../tls/peer';
import type { PeerSecurity } from '../transport';

/** The member's TLS: a source per side (undefined when that side has no certificate). */
export interface MemberTls {
  client?: TlsSource;
  peer?: TlsSource;
  /** The peer transport's TLS (dialing https:// peer URLs, serving https:// listen URLs). */
  peerSecurity?: PeerSecurity;
}

const hostOf = (u: string): string => new URL(u).hostname;

/** Auto-TLS for one side when asked for and no files were given. */
async function withAutoTls(info: TlsInfo, auto: boolean, dir: string, urls: string[], clientAuth: boolean, logger: Logger, what: string): Promise<TlsInfo> {
  if (!auto) return info;
  if (!tlsInfoEmpty(info)) {
    logger.warn(`ignoring ${what} auto TLS since certs given`);
    return info;
  }
  const files = await selfCert(dir, urls.map(hostOf), clientAuth);
  logger.info({ dir }, `generated self-signed ${what} certificate (auto TLS)`);
  return { ...info, ...files, selfCert: true };
}

/** etcd's per-URL checks: https needs a certificate, http with certificate flags only warns. */
function checkUrls(urls: string[], info: TlsInfo, logger: Logger, side: 'client' | 'peer'): void {
  for (const u of urls) {
    const scheme = u.slice(0, u.indexOf(':'));
    if (scheme === 'http' || scheme === 'unix') {
      if (!tlsInfoEmpty(info)) logger.warn({ [`${side}-url`]: u }, 'scheme is HTTP while key and cert files are present; ignoring key and cert files');
      if (info.clientCertAuth) logger.warn({ [`${side}-url`]: u }, `scheme is HTTP while --${side === 'peer' ? 'peer-' : ''}client-cert-auth is enabled; ignoring client cert auth for this URL`);
    } else if (tlsInfoEmpty(info)) {
      if (side === 'client') throw new Error(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${u} with HTTPS scheme`);
      throw new Error(`cannot listen on TLS for ${new URL(u).host}: KeyFile and CertFile are not presented`);
    }
  }
}

/**
 * Builds the member's TLS from `config`. Throws (etcd's messages) on a bad cipher suite, an https URL without a
 * certificate, or certificate files that cannot be read or do not match their key.
 */
export async function prepareTls(config: ServerConfig, logger: Logger): Promise<MemberTls> {
  const ciphers = opensslCipherList(config.cipherSuites);
  const fixtures = path.join(config.dataDir, 'fixtures');
  const client = await withAutoTls({ ...config.clientTls, ciphers }, config.clientAutoTls, path.join(fixtures, 'client'), config.listenClientUrls, false, logger, 'client');
  const peer = await withAutoTls({ ...config.peerTls, ciphers }, config.peerAutoTls, path.join(fixtures, 'peer'), config.listenPeerUrls, true, logger, 'peer');
  checkUrls([...config.listenClientUrls, ...config.listenMetricsUrls], client, logger, 'client');
  checkUrls(config.listenPeerUrls, peer, logger, 'peer');
  const onReload = (side: string) => (files: { certFile: string; keyFile: string }, err?: Error): void => {
    if (err) logger.warn({ side, 'cert-file': files.certFile, 'key-file': files.keyFile, error: err.message }, 'certificate files changed but cannot be loaded; new connections fail until they load');
    else logger.info({ side, 'cert-file': files.certFile, 'key-file': files.keyFile }, 'reloaded rotated certificate for new connections');
  };
  const out: MemberTls = {};
  if (!tlsInfoEmpty(client)) {
    out.client = new TlsSource(client, onReload('client'));
    logger.info({ 'cert-file': client.certFile, 'key-file': client.keyFile, 'trusted-ca-file': client.trustedCaFile, 'client-cert-auth': client.clientCertAuth }, 'starting with client TLS');
  }
  if (!tlsInfoEmpty(peer)) {
    out.peer = new TlsSource(peer, onReload('peer'));
    out.peerSecurity = peerSecurity(out.peer, logger);
    logger.info({ 'cert-file': peer.certFile, 'key-file': peer.keyFile, 'trusted-ca-file': peer.trustedCaFile, 'client-cert-auth': peer.clientCertAuth, 'allowed-cn': peer.allowedCn }, 'starting with peer TLS');
  }
  return out;
}
