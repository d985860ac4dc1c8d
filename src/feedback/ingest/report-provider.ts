/**
 * The `provider` label of reports about delivered messages (DSN bounces, complaints, ESP notifications), taken
 * as the delivery was counted, so the bounce, complaint and authentication-failure counts share the provider of
 * the deliveries they are ratios of and alerts of.
 */
import { deliveryProvider, OTHER_PROVIDER, type ProviderMap } from '../../metrics/provider.js';
import type { MessageStore } from '../../store/message-store.js';
import type { TimelineEvent } from '../../store/types.js';

export interface ReportProviderDeps {
  messages: Pick<MessageStore, 'get'>;
  providers: ProviderMap;
  /** delivery.smarthost is set: the host that took the message says nothing about the destination. */
  smarthost: boolean;
}

/**
 * The provider of each reported recipient of message `id`: by recipient domain, else by the MX host its
 * delivery went to (a company domain whose MX is Google's is gmail, as src/delivery/stages/route.ts counts
 * it). Reads the message's timeline only when a recipient's domain says nothing.
 */
export async function reportedProviders(deps: ReportProviderDeps, id: string, addresses: readonly string[]): Promise<Map<string, string>> {
  const out = new Map(addresses.map((a) => [a, deps.providers.byDomain(a)]));
  const unknown = addresses.filter((a) => out.get(a) === OTHER_PROVIDER);
  if (!unknown.length || deps.smarthost) return out;
  const events = (await deps.messages.get(id))?.events ?? [];
  for (const a of unknown) out.set(a, deliveryProvider(deps.providers, a, hostOf(events, a), false));
  return out;
}

/** The host of the recipient's last `delivered` event, else of its last `attempt`. */
function hostOf(events: readonly TimelineEvent[], address: string): string | undefined {
  let delivered: string | undefined;
  let attempted: string | undefined;
  for (const e of events) {
    if (e.type === 'delivered' && e.host && e.recipients.includes(address)) delivered = e.host;
    if (e.type === 'attempt' && e.host && e.recipients.includes(address)) attempted = e.host;
  }
  return delivered ?? attempted;
}
