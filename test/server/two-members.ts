/** A bootstrapped two-member membership ("a" local, "b"), as the server's unit tests start from. */
import { bootstrapMembership, type Membership } from '../../src/server/membership';

/** Members a (peer :1, client :11, local) and b (peer :2), cluster token "t". */
export function twoMemberMembership(): Membership {
  return bootstrapMembership({
    localName: 'a',
    initialCluster: [{ name: 'a', peerUrls: ['http://127.0.0.1:1'] }, { name: 'b', peerUrls: ['http://127.0.0.1:2'] }],
    advertisePeerUrls: ['http://127.0.0.1:1'],
    advertiseClientUrls: ['http://127.0.0.1:11'],
    clusterToken: 't',
  });
}
