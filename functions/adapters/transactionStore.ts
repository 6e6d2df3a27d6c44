import { GetCommand, PutCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { newSigningSecret } from '../domain/ids.js';
import { TX } from '../domain/transactions/limits.js';
import type { CheckBackTarget, CheckRecord, CommitResult, DecidedBy, PreparedMessage, Transaction, TransactionState } from '../domain/transactions/model.js';
import { CommitCancelled, type CommitDecision, type CommitSegment, type TransactionStore } from '../domain/transactions/ports.js';
import { cancellationCodes, cancellationItem, failedItem, isConditionFailure, isTransactionConflict, newWriteToken, writtenBy } from './dynamoErrors.js';
import { dedupPut, SEGMENT_CONDITION, segmentItem } from './logStore.js';

/** The check-back signing secret's item in the Secrets table. */
const CHECK_BACK_SECRET_KEY = '#transactions/check-back';

/**
 * Transactions: pk = id, st = state, m = the prepared messages (JSON, removed at the decision), ex = expiry,
 * cb = check-back target (JSON), mc / ci = maxChecks / checkIntervalSeconds, ck = checks by number
 * ({"<n>": {at, a, r?}}), db / da = decided by / at, rs = commit results (JSON), w = write token of the
 * last conditional write, exp = TTL (epoch seconds).
 */
export class DynamoTransactionStore implements TransactionStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly logTable: string,
    private readonly dedupTable: string,
    private readonly secretsTable: string,
  ) {}

  async create(tx: Transaction) {
    const writeToken = newWriteToken();
    // Kept until every check could have run (maxChecks waits of at most an hour), then a week more.
    const exp = Math.ceil(tx.expiresAt / 1000) + tx.maxChecks * TX.maxCheckIntervalSeconds + TX.keepDecidedSeconds;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            pk: tx.id,
            st: tx.state,
            m: JSON.stringify(tx.messages),
            cr: tx.createdAt,
            ex: tx.expiresAt,
            ...(tx.checkBack ? { cb: JSON.stringify(tx.checkBack) } : {}),
            mc: tx.maxChecks,
            ci: tx.checkIntervalSeconds,
            ck: {},
            w: writeToken,
            exp,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      // Ours, applied before its reply was lost (ids are 128 random bits: nobody else's).
      if (isConditionFailure(error) && writtenBy(failedItem(error), writeToken)) return;
      throw error;
    }
  }

  async get(id: string): Promise<Transaction | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk: id }, ConsistentRead: true }));
    return out.Item ? toTransaction(out.Item) : undefined;
  }

  async commit(id: string, segments: readonly CommitSegment[], idExpiresAt: number, decision: CommitDecision) {
    const writeToken = newWriteToken();
    const nowSeconds = Math.floor(decision.at / 1000);
    const idActions = segments.flatMap((s) => s.ids.map((entry) => ({ topicKey: s.topicKey, id: entry.id, action: dedupPut(this.dedupTable, s.topicKey, entry, idExpiresAt, nowSeconds) })));
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: { pk: id },
                UpdateExpression: 'SET st = :committed, db = :by, da = :at, rs = :results, w = :w, exp = :exp REMOVE m',
                ConditionExpression: 'st = :prepared',
                ExpressionAttributeValues: {
                  ':committed': 'committed',
                  ':prepared': 'prepared',
                  ':by': decision.decidedBy,
                  ':at': decision.at,
                  ':results': JSON.stringify(decision.results),
                  ':w': writeToken,
                  ':exp': nowSeconds + TX.keepDecidedSeconds,
                },
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
            ...segments.map((s) => ({ Put: { TableName: this.logTable, Item: segmentItem(s.topicKey, s.segment, writeToken), ...SEGMENT_CONDITION } })),
            ...idActions.map((a) => a.action),
          ],
        }),
      );
    } catch (error) {
      const codes = cancellationCodes(error);
      if (!codes) {
        if (isTransactionConflict(error)) throw new CommitCancelled(true, [], false);
        throw error;
      }
      // Our own commit, applied before its reply was lost: the transaction carries our token.
      if (codes[0] === 'ConditionalCheckFailed' && writtenBy(cancellationItem(error, 0), writeToken)) return;
      const decided = codes[0] === 'ConditionalCheckFailed';
      const offsetTaken = segments.some((_, i) => codes[1 + i] === 'ConditionalCheckFailed') || isTransactionConflict(error);
      const idsTaken = idActions.filter((_, i) => codes[1 + segments.length + i] === 'ConditionalCheckFailed').map(({ topicKey, id: taken }) => ({ topicKey, id: taken }));
      throw new CommitCancelled(offsetTaken, idsTaken, decided);
    }
  }

  async rollback(id: string, decidedBy: DecidedBy, at: number): Promise<'rolledBack' | 'committed' | 'missing'> {
    const writeToken = newWriteToken();
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: id },
          UpdateExpression: 'SET st = :rolledBack, db = :by, da = :at, w = :w, exp = :exp REMOVE m',
          ConditionExpression: 'st = :prepared',
          ExpressionAttributeValues: {
            ':rolledBack': 'rolledBack',
            ':prepared': 'prepared',
            ':by': decidedBy,
            ':at': at,
            ':w': writeToken,
            ':exp': Math.floor(at / 1000) + TX.keepDecidedSeconds,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'rolledBack';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const item = failedItem(error);
      if (!item) return 'missing';
      // A retry of our own rollback finds it applied (our token), as does any other rollback: both are rolled back.
      return item.st?.S === 'committed' ? 'committed' : 'rolledBack';
    }
  }

  async recordCheck(id: string, check: CheckRecord) {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: id },
          UpdateExpression: 'SET ck.#n = :check',
          ConditionExpression: 'st = :prepared',
          ExpressionAttributeNames: { '#n': String(check.check) },
          ExpressionAttributeValues: {
            ':prepared': 'prepared',
            ':check': { at: check.at, a: check.answer, ...(check.reason !== undefined ? { r: check.reason } : {}) },
          },
        }),
      );
    } catch (error) {
      // Decided meanwhile: its checks no longer change.
      if (!isConditionFailure(error)) throw error;
    }
  }

  async checkBackSecret(): Promise<string> {
    // Made once and never changed: one read per process, not one per prepare and per check.
    this.secret ??= this.readOrCreateSecret().catch((error: unknown) => {
      this.secret = undefined;
      throw error;
    });
    return this.secret;
  }

  private secret: Promise<string> | undefined;

  private async readOrCreateSecret(): Promise<string> {
    const read = async () =>
      (await this.client.send(new GetCommand({ TableName: this.secretsTable, Key: { pk: CHECK_BACK_SECRET_KEY }, ConsistentRead: true }))).Item?.s as
        | string
        | undefined;
    const existing = await read();
    if (existing) return existing;
    const secret = newSigningSecret();
    try {
      // Conditional: two first prepares at once must not hand out two different secrets.
      await this.client.send(
        new PutCommand({ TableName: this.secretsTable, Item: { pk: CHECK_BACK_SECRET_KEY, s: secret }, ConditionExpression: 'attribute_not_exists(pk)' }),
      );
      return secret;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const stored = await read();
      if (!stored) throw error;
      return stored;
    }
  }
}

function toTransaction(item: Record<string, unknown>): Transaction {
  const checks = Object.entries((item.ck ?? {}) as Record<string, { at: number; a: CheckRecord['answer']; r?: string }>)
    .map(([n, c]) => ({ check: Number(n), at: c.at, answer: c.a, ...(c.r !== undefined ? { reason: c.r } : {}) }))
    .sort((a, b) => a.check - b.check);
  return {
    id: item.pk as string,
    state: item.st as TransactionState,
    messages: item.m ? (JSON.parse(item.m as string) as PreparedMessage[]) : [],
    createdAt: item.cr as number,
    expiresAt: item.ex as number,
    ...(item.cb ? { checkBack: JSON.parse(item.cb as string) as CheckBackTarget } : {}),
    maxChecks: item.mc as number,
    checkIntervalSeconds: item.ci as number,
    checks,
    ...(item.db ? { decidedBy: item.db as DecidedBy } : {}),
    ...(item.da !== undefined ? { decidedAt: item.da as number } : {}),
    ...(item.rs ? { results: JSON.parse(item.rs as string) as CommitResult[] } : {}),
  };
}
