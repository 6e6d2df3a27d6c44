import { SessionAppendCancelled, type SessionAppend, type SessionHead, type SessionRecord, type SessionStore } from '../../functions/domain/ports.js';
import type { CallLog, MemoryLogStore } from './stores.js';

/**
 * Producer sessions in memory, with the adapter's transaction: the head moves only from where the request
 * starts, and the record and every segment land together or not at all.
 */
export class MemorySessionStore implements SessionStore {
  readonly heads = new Map<string, SessionHead>();
  readonly records_ = new Map<string, SessionRecord[]>();

  constructor(
    private readonly log: MemoryLogStore,
    private readonly calls: CallLog,
  ) {}

  async head(topicKey: string, session: string) {
    this.calls.push('sessions.head');
    const head = this.heads.get(`${topicKey}#${session}`);
    return head ? { ...head } : undefined;
  }

  async records(topicKey: string, session: string, fromFirst: number, toFirst: number) {
    this.calls.push('sessions.records');
    return (this.records_.get(`${topicKey}#${session}`) ?? []).filter((r) => r.first >= fromFirst && r.first <= toFirst).map((r) => structuredClone(r));
  }

  async append(write: SessionAppend) {
    this.calls.push('sessions.append');
    const key = `${write.topicKey}#${write.session}`;
    const head = this.heads.get(key);
    const headMoved = write.record.first === 0 ? head !== undefined : head?.next !== write.record.first;
    const recordTaken = (this.records_.get(key) ?? []).some((r) => r.first === write.record.first);
    const offsetsTaken = new Map<number, number | undefined>();
    for (const segment of write.segments) {
      const winner = (this.log.partitions.get(`${write.topicKey}#${segment.partition}`) ?? []).find((s) => s.base === segment.base);
      if (winner) offsetsTaken.set(segment.partition, winner.base + winner.count);
    }
    if (headMoved || recordTaken || offsetsTaken.size > 0) {
      throw new SessionAppendCancelled(headMoved || recordTaken, headMoved && head ? { ...head } : undefined, offsetsTaken);
    }
    for (const segment of write.segments) this.log.store(write.topicKey, segment);
    this.records_.set(key, [...(this.records_.get(key) ?? []), structuredClone(write.record)].sort((a, b) => a.first - b.first));
    this.heads.set(key, { next: write.record.first + write.record.count });
  }
}
