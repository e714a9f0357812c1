import { Webhook } from 'standardwebhooks';

/**
 * The Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`) of one
 * message, signed with the `standardwebhooks` library: the event deliverer and the http run
 * submitter both sign this way, and receivers verify with any Standard Webhooks library.
 */
export function webhookHeaders(secret: string, id: string, nowMs: number, body: string): Record<string, string> {
  const at = new Date(Math.floor(nowMs / 1000) * 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(at.getTime() / 1000),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}
