import { transactionPorts } from '../adapters/transactionPorts.js';
import { rollbackTransaction } from '../domain/transactions/decide.js';
import { apiRoute } from '../http/route.js';
import { TransactionParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: TransactionParams,
  run: async ({ params, config }) => {
    const tx = await rollbackTransaction(transactionPorts(config).transactions, params.id, 'producer');
    return { status: 200, body: { id: tx.id, state: tx.state } };
  },
});
