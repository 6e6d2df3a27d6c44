import { refusedPushUrl } from '../adapters/httpPush.js';
import { loadConfig } from '../config.js';
import { validation } from '../domain/errors.js';
import { putGroup } from '../domain/groups/groups.js';
import { apiRoute } from '../http/route.js';
import { GroupParams, PutGroupBody } from '../http/schemas.js';
import { groupView } from '../http/views.js';

export const handler = apiRoute({
  params: GroupParams,
  body: PutGroupBody,
  run: async ({ params, body, stores }) => {
    // API.md: the deployed stack refuses push URLs to private, loopback or link-local addresses (400).
    if (body.delivery?.type === 'http') {
      const refused = await refusedPushUrl(body.delivery.url, { allowPrivateAddresses: loadConfig().pushAllowPrivate });
      if (refused) throw validation(refused);
    }
    const { created, group, signingSecret } = await putGroup(stores, params.topic, params.group, body);
    return { status: created ? 201 : 200, body: { ...groupView(group), ...(signingSecret ? { signingSecret } : {}) } };
  },
});
