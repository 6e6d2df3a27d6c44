import { transactionPorts } from '../adapters/transactionPorts.js';
import { requireTransaction } from '../domain/transactions/decide.js';
import { apiRoute } from '../http/route.js';
import { TransactionParams } from '../http/schemas.js';
import { transactionView } from '../http/transactionView.js';

export const handler = apiRoute({
  params: TransactionParams,
  run: async ({ params, config }) => ({ status: 200, body: transactionView(await requireTransaction(transactionPorts(config).transactions, params.id)) }),
});
