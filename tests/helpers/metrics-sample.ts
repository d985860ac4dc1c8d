/** Test helper: one observation on every Kurir metric, so each appears in the exposition with its labels. */
import { type createMetrics, replyCodeLabel } from '../../src/metrics/metrics.js';

export function observeEverything(m: ReturnType<typeof createMetrics>): void {
  m.intakeAccepted.inc({ interface: 'smtp', priority: 'verification' });
  m.intakeRefused.inc({ interface: 'http', reason: 'KURIR_SUPPRESSED' });
  m.intakeDuration.observe({ interface: 'smtp' }, 0.004);
  m.intakeBytes.inc({ interface: 'smtp' }, 2048);
  m.authFailures.inc({ interface: 'smtp', reason: 'bad-password' });
  m.authBlocked.inc({ interface: 'http', scope: 'ip' });
  m.connectionsRefused.inc({ interface: 'smtp', scope: 'ip' });
  m.deliveryAttempts.inc({ provider: 'gmail', result: 'bounced', category: 'policy' });
  m.deliveryTime.observe({ priority: 'verification', provider: 'gmail' }, 3.2);
  m.deliveryTls.inc({ provider: 'gmail', tls: 'yes' });
  m.deliveryConnectionReuses.inc({ provider: 'gmail' });
  m.deliveryReplies.inc({ provider: 'gmail', code: replyCodeLabel(550) });
  m.mtaStsSessions.inc({ mode: 'enforce', result: 'success' });
  m.mtaStsLookups.inc({ result: 'fetched' });
  m.tlsFailures.inc({ provider: 'gmail', result_type: 'starttls-not-supported' });
  m.dkimSignatures.inc({ domain: 'example.com', selector: 'k1', algorithm: 'rsa-sha256' });
  m.dkimFailures.inc({ domain: 'example.com', reason: 'KURIR_DKIM_NO_KEY' });
  m.authSelfCheck.set({ domain: 'example.com', check: 'dkim' }, 1);
  m.dkimKeyAge.set({ domain: 'example.com', selector: 'k2026m11' }, 86400);
  m.dkimKeyWarnAge.set({ domain: 'example.com' }, 76 * 86400);
  m.dkimRotationWaiting.set({ domain: 'example.com', trigger: 'schedule' }, 3600);
  m.dkimScheduledRotations.inc({ step: 'started' });
  m.shapingRefusals.inc({ limit: 'provider-rate' });
  m.shapingRate.set({ provider: 'gmail' }, 120);
  m.shapingPaused.set({ provider: 'gmail' }, 1);
  m.shapingPauses.inc({ provider: 'gmail' });
  m.bounces.inc({ provider: 'yahoo', category: 'mailbox-full', type: 'soft' });
  m.complaints.inc({ provider: 'yahoo' });
  m.suppressionsAdded.inc({ reason: 'hard-bounce' });
  m.feedbackIgnored.inc({ reason: 'truncated' });
  m.webhooks.inc({ result: 'sent' });
  m.placement.inc({ provider: 'microsoft', folder: 'spam' });
  m.confirmations.inc({ provider: 'apple', domain: 'example.com' });
  m.verificationsDelivered.inc({ provider: 'apple', domain: 'example.com' });
  m.placementArrival.observe({ provider: 'microsoft' }, 4);
  m.placementSeedUp.set({ seed: 'microsoft-1', provider: 'microsoft' }, 1);
  m.placementSeedErrors.inc({ provider: 'microsoft', reason: 'auth' });
  m.timeToConfirm.observe({ provider: 'apple' }, 45);
  m.rspamdScore.observe({ domain: 'example.com' }, 2.5);
  m.rspamdChecks.inc({ domain: 'example.com', action: 'no-action' });
  m.rspamdSkipped.inc({ reason: 'timeout' });
  m.rspamdDuration.observe(0.1);
  m.redisUp.set(1);
}
