import { transactionPorts } from '../adapters/transactionPorts.js';
import { commitTransaction } from '../domain/transactions/decide.js';
import { apiRoute } from '../http/route.js';
import { TransactionParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: TransactionParams,
  run: async ({ params, stores, config, deadline }) => {
    const tx = await commitTransaction(stores, transactionPorts(config).transactions, params.id, 'producer', deadline);
    return { status: 200, body: { id: tx.id, state: tx.state, results: tx.results ?? [] } };
  },
});
