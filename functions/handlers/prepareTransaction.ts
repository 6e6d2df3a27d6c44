import { transactionPorts } from '../adapters/transactionPorts.js';
import { prepareTransaction } from '../domain/transactions/prepare.js';
import { apiRoute } from '../http/route.js';
import { TransactionBody } from '../http/schemas.js';

export const handler = apiRoute({
  body: TransactionBody,
  run: async ({ body, stores, config }) => {
    const prepared = await prepareTransaction(stores, transactionPorts(config), body);
    return { status: 201, body: { ...prepared, expiresAt: new Date(prepared.expiresAt).toISOString() } };
  },
});
