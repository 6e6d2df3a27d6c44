import { SluiceError } from '../domain/errors.js';
import { putGroup } from '../domain/groups.js';
import { apiRoute } from '../http/route.js';
import { GroupParams, PutGroupBody } from '../http/schemas.js';
import { groupView } from '../http/views.js';

export const handler = apiRoute({
  params: GroupParams,
  body: PutGroupBody,
  run: async ({ params, body, stores }) => {
    // The push worker and its sender are built (functions/domain/push/), the stream dispatcher and the
    // push queue that run them are not yet: refuse push groups instead of storing one nothing delivers.
    if (body.delivery && body.delivery.type !== 'pull') {
      throw new SluiceError('NotSupported', `delivery type '${body.delivery.type}' is not served yet: groups are pulled (README, "Not built yet").`);
    }
    const { created, group, signingSecret } = await putGroup(stores, params.topic, params.group, body);
    return { status: created ? 201 : 200, body: { ...groupView(group), ...(signingSecret ? { signingSecret } : {}) } };
  },
});
