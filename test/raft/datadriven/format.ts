/**
 * Text rendering of Raft entries, messages, Readies and status for the interaction scripts. One line per item,
 * never a blank line (a blank line ends a script block). Stable across runs: no timestamps, no map-order output.
 */
import { EntryType, MessageType, StateType } from '../../../src/raft';
import type { ConfState, Entry, HardState, Message, RawNode, Ready, Snapshot } from '../../../src/raft';

const dec = new TextDecoder();

/** Bytes shown as a quoted string (scripts only put printable ASCII in entries and contexts). */
export function quote(b: Uint8Array | undefined): string {
  return JSON.stringify(b === undefined ? '' : dec.decode(b));
}

/** `index/term EntryNormal "data"` or `index/term EntryConfChange v4`. */
export function formatEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) return `${e.term}/${e.index} EntryConfChange ${dec.decode(e.data)}`;
  return `${e.term}/${e.index} EntryNormal ${quote(e.data)}`;
}

/** `voters=(1 2 3) learners=(4)` */
export function formatConfState(cs: ConfState): string {
  return `voters=(${cs.voters.join(' ')}) learners=(${cs.learners.join(' ')})`;
}

/** `Index:5 Term:2 voters=(...) learners=(...)` */
export function formatSnapshot(s: Snapshot): string {
  return `Index:${s.metadata.index} Term:${s.metadata.term} ${formatConfState(s.metadata.confState)} Data:${quote(s.data)}`;
}

/** `Term:2 Vote:1 Commit:3` */
export function formatHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

/** Role names as etcd prints them. */
export function formatState(s: StateType): string {
  return `State${StateType[s]}`;
}

/**
 * One message, showing only the fields its type uses: `1->2 MsgApp Term:2 Log:1/3 Commit:3 Entries:[...]`.
 * Log is logTerm/index of the entry preceding the entries (MsgApp) or the candidate's last entry (votes).
 */
export function formatMessage(m: Message): string {
  const t = m.type;
  const parts = [`${m.from}->${m.to}`, MessageType[t], `Term:${m.term}`];
  switch (t) {
    case MessageType.MsgApp:
      parts.push(`Log:${m.logTerm}/${m.index}`, `Commit:${m.commit}`);
      break;
    case MessageType.MsgVote:
    case MessageType.MsgPreVote:
      parts.push(`Log:${m.logTerm}/${m.index}`);
      break;
    case MessageType.MsgAppResp:
    case MessageType.MsgReadIndexResp:
      parts.push(`Index:${m.index}`);
      break;
    case MessageType.MsgHeartbeat:
      parts.push(`Commit:${m.commit}`);
      break;
    default:
      break;
  }
  if (m.reject) {
    parts.push('Rejected');
    if (t === MessageType.MsgAppResp) parts.push(`(Hint: ${m.rejectHint}/${m.logTerm})`);
  }
  if (m.context !== undefined && m.context.length > 0) parts.push(`Ctx:${quote(m.context)}`);
  if (m.entries.length > 0) parts.push(`Entries:[${m.entries.map(formatEntry).join(', ')}]`);
  if (m.snapshot !== undefined) parts.push(`Snapshot:[${formatSnapshot(m.snapshot)}]`);
  return parts.join(' ');
}

/** The lines of a Ready (everything in it; empty sections are left out). */
export function formatReady(rd: Ready): string[] {
  const out: string[] = [];
  if (rd.softState) out.push(`Lead:${rd.softState.lead} ${formatState(rd.softState.raftState)}`);
  if (rd.hardState) out.push(`HardState ${formatHardState(rd.hardState)}`);
  if (rd.snapshot) out.push(`Snapshot ${formatSnapshot(rd.snapshot)}`);
  if (rd.entries.length > 0) out.push('Entries:', ...rd.entries.map(formatEntry));
  if (rd.committedEntries.length > 0) out.push('CommittedEntries:', ...rd.committedEntries.map(formatEntry));
  if (rd.readStates.length > 0) out.push('ReadStates:', ...rd.readStates.map((r) => `Index:${r.index} Ctx:${quote(r.requestCtx)}`));
  if (rd.messages.length > 0) out.push('Messages:', ...rd.messages.map(formatMessage));
  if (rd.messagesAfterPersist.length > 0) out.push('MessagesAfterPersist:', ...rd.messagesAfterPersist.map(formatMessage));
  return out;
}

/** Status of one node; on the leader, one line per peer with its replication progress. */
export function formatStatus(node: RawNode): string[] {
  const st = node.status();
  const r = node.raft;
  const out = [
    `${st.id}: ${formatState(st.state)} Term:${st.term} Vote:${st.vote} Lead:${st.lead} Commit:${st.commit} Applied:${st.applied} LastIndex:${st.lastIndex} FirstIndex:${r.raftLog.firstIndex()}`,
  ];
  if (st.progress) {
    for (const id of [...st.progress.keys()].sort((a, b) => a - b)) {
      const p = st.progress.get(id)!;
      const pr = r.trk.progress.get(id)!;
      const extra: string[] = [];
      if (pr.isLearner) extra.push('learner');
      if (pr.pendingSnapshot > 0) extra.push(`pendingSnapshot:${pr.pendingSnapshot}`);
      if (pr.isPaused()) extra.push('paused');
      out.push(`  ${id}: ${p.state} match=${p.match} next=${p.next}${extra.length > 0 ? ' ' + extra.join(' ') : ''}`);
    }
  }
  return out;
}
