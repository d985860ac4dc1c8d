import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { DELIVERY_CATEGORIES } from '../../../src/metrics/metrics.js';
import { AUTH_CAUSES, type AuthCause } from '../../../src/lib/outcome-categories.js';
import {
  BOUNCE_CATEGORIES,
  BounceRulesError,
  classifyReply,
  compileBounceRules,
  extractEnhanced,
  loadBounceRules,
  parseReply,
  type BounceCategory,
  type ReplyInput,
} from '../../../src/feedback/classify/rules.js';

const rules = loadBounceRules('config/bounce-rules.yaml');

type Row = [reply: string, category: BounceCategory, type: 'hard' | 'soft', senderSide?: boolean, cause?: AuthCause];

/**
 * Reply strings in the shape the receivers publish or are commonly seen to send (IPs from TEST-NET,
 * domains under .test). Each is parsed as a whole line, the way the CLI and the delivery worker see it.
 */
const table: Record<string, Row[]> = {
  gmail: [
    [
      "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp",
      'invalid-recipient',
      'hard',
      false,
    ],
    [
      '550-5.2.1 The email account that you tried to reach is disabled. Learn more at https://support.google.com/mail/?p=DisabledUser - gsmtp',
      'inactive-mailbox',
      'hard',
      false,
    ],
    [
      '552-5.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm - gsmtp',
      'mailbox-full',
      'soft',
      false,
    ],
    [
      '452-4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp',
      'mailbox-full',
      'soft',
      false,
    ],
    [
      '450-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time. - gsmtp',
      'rate-limit',
      'soft',
      false,
    ],
    [
      '550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. The sender must authenticate with at least one of SPF or DKIM. For this message, DKIM checks did not pass and SPF check for [example.test] did not pass with ip: [192.0.2.10]. - gsmtp',
      'auth-failure',
      'hard',
      true,
      'unauthenticated',
    ],
    [
      "550-5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy. Please contact the administrator of example.test domain if this was a legitimate mail. - gsmtp",
      'auth-failure',
      'hard',
      true,
      'dmarc',
    ],
    [
      '421-4.7.26 This mail has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. - gsmtp',
      'auth-failure',
      'soft',
      true,
      'unauthenticated',
    ],
    [
      '421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. - gsmtp',
      'rate-limit',
      'soft',
      true,
    ],
    [
      '550-5.7.1 Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. - gsmtp',
      'spam-block',
      'hard',
      true,
    ],
    [
      '550-5.7.1 This message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked. - gsmtp',
      'spam-block',
      'hard',
      true,
    ],
    [
      '550-5.7.25 The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. As a policy, Gmail does not accept messages from IPs with missing PTR records. - gsmtp',
      'auth-failure',
      'hard',
      true,
      'ptr',
    ],
    ['550-5.7.1 This message does not meet IPv6 sending guidelines regarding PTR records and authentication. - gsmtp', 'auth-failure', 'hard', true, 'ptr'],
    ['421-4.7.0 Try again later, closing connection. (EHLO) - gsmtp', 'rate-limit', 'soft', true],
    [
      "552-5.3.4 Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to view our size guidelines. - gsmtp",
      'protocol',
      'hard',
      true,
    ],
    ['550-5.4.5 Daily user sending quota exceeded. - gsmtp', 'rate-limit', 'soft', true],
  ],
  microsoft: [
    ['550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302).', 'invalid-recipient', 'hard', false],
    [
      '550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]',
      'invalid-recipient',
      'hard',
      false,
    ],
    ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'invalid-recipient', 'hard', false],
    ['550 5.1.1 RESOLVER.ADR.RecipNotFound; not found', 'invalid-recipient', 'hard', false],
    [
      '550 5.7.509 Access denied, sending domain example.test does not pass DMARC verification and has a DMARC policy of reject.',
      'auth-failure',
      'hard',
      true,
      'dmarc',
    ],
    [
      "550 5.7.515 Access denied, sending domain example.test doesn't meet the required authentication level. The sender's domain in the 5322.From address doesn't meet the authentication requirements defined for the sender.",
      'auth-failure',
      'hard',
      true,
      'unauthenticated',
    ],
    [
      "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
      'spam-block',
      'hard',
      true,
    ],
    [
      '550 5.7.606 Access denied, banned sending IP [192.0.2.10]. To request removal from this list please visit https://sender.office.com/ and follow the directions.',
      'spam-block',
      'hard',
      true,
    ],
    ['550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.', 'spam-block', 'hard', true],
    [
      '550 5.7.1 Service unavailable, Client host [192.0.2.10] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.10 AS(1450)',
      'spam-block',
      'hard',
      true,
    ],
    [
      '451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77719) [VI1EUR04FT033.eop-eur04.prod.protection.outlook.com]',
      'rate-limit',
      'soft',
      true,
    ],
    [
      '421 4.7.650 The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)',
      'rate-limit',
      'soft',
      true,
    ],
    ['550 5.7.350 Remote server returned message detected as spam -> 554 5.7.1 Message rejected due to content restrictions', 'spam-block', 'hard', true],
    ['554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded', 'mailbox-full', 'soft', false],
    ['550 5.4.310 DNS domain nowhere.test does not exist [Message=InfoDomainNonexistent] [LastAttemptedServerName=nowhere.test]', 'bad-domain', 'hard', false],
    ['554 5.6.0 Corrupt message content; STOREDRV.Deliver.Exception:ConversionFailedPermanentException', 'protocol', 'hard', true],
    ['550 5.4.316 Message expired, connection refused(Socket error code 10061)', 'message-expired', 'soft', false],
    ['452 4.3.1 Insufficient system resources', 'other', 'soft', false],
    // Directory-based edge blocking in its newer wording (no AS code) and with the older one.
    [
      '550 5.4.1 Recipient address rejected: Access denied. For more information see https://aka.ms/EXOSmtpErrors [AM4PEPF00027A5F.eurprd04.prod.outlook.com 2024-03-12T14:10:02.123Z 08DC41F1A2B3C4D5]',
      'invalid-recipient',
      'hard',
      false,
    ],
    [
      '550 5.4.1 [someone@example.test]: Recipient address rejected: Access denied. AS(201806281) [SN1NAM02FT012.eop-nam02.prod.protection.outlook.com]',
      'invalid-recipient',
      'hard',
      false,
    ],
    ['550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found', 'invalid-recipient', 'hard', false],
    [
      '550 5.7.520 Access denied, Your organization does not allow external forwarding. Please contact your administrator for further assistance. AS(7555)',
      'policy',
      'hard',
      true,
    ],
    ['550 5.2.2 STOREDRV.Deliver: mailbox full', 'mailbox-full', 'soft', false],
  ],
  yahoo: [
    [
      "554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - mta1003.mail.gq1.yahoo.com",
      'invalid-recipient',
      'hard',
      false,
    ],
    [
      '554 delivery error: dd Sorry your message to someone@yahoo.com cannot be delivered. This mailbox is disabled (554.30). - mta1010.mail.bf1.yahoo.com',
      'inactive-mailbox',
      'hard',
      false,
    ],
    [
      '421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes',
      'rate-limit',
      'soft',
      true,
    ],
    [
      '421 4.7.1 [TSS09] All messages from 192.0.2.10 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes',
      'spam-block',
      'soft',
      true,
    ],
    ['554 5.7.9 Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes', 'spam-block', 'hard', true],
    [
      '550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo requires all senders to authenticate with either SPF or DKIM.',
      'auth-failure',
      'hard',
      true,
      'unauthenticated',
    ],
    ['552 1 Requested mail action aborted, mailbox not found', 'invalid-recipient', 'hard', false],
    [
      "554 delivery error: dd This user doesn't have a aol.com account (someone@aol.com) [0] - mta1204.aol.mail.bf1.yahoo.com",
      'invalid-recipient',
      'hard',
      false,
    ],
    ['554 30 Sorry, your message to someone@yahoo.com cannot be delivered. This mailbox is disabled (554.30).', 'inactive-mailbox', 'hard', false],
  ],
  apple: [
    ['550 5.1.1 <someone@icloud.com>: user does not exist', 'invalid-recipient', 'hard', false],
    ['552 5.2.2 <someone@icloud.com>: user is over quota (in reply to RCPT TO command)', 'mailbox-full', 'soft', false],
    ['554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137', 'spam-block', 'hard', true],
    ['550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.10', 'spam-block', 'hard', true],
    ['421 4.7.0 [TS01] Messages from 192.0.2.10 temporarily deferred due to user complaints - 4.16.55.1', 'spam-block', 'soft', true],
    ['550 5.7.1 [HM08] Message rejected due to DMARC policy', 'auth-failure', 'hard', true, 'dmarc'],
    ['550 5.1.1 <someone@icloud.com>: inactive email address', 'inactive-mailbox', 'hard', false],
  ],
  'gmx and web.de': [
    ['550 Requested action not taken: mailbox unavailable', 'invalid-recipient', 'hard', false],
    ['550 5.1.1 <someone@web.de>: Recipient address rejected: User unknown', 'invalid-recipient', 'hard', false],
    // The same words, but about our bounce domain's DNS: never the recipient's fault.
    ['550-Requested action not taken: mailbox unavailable 550 invalid DNS MX or A/AAAA resource record', 'policy', 'hard', true],
    [
      '554-Transaction failed 554-Reject due to policy restrictions. 554 For explanation visit https://postmaster.gmx.net/en/error-messages?ip=192.0.2.10&c=hi',
      'spam-block',
      'hard',
      true,
    ],
    ['452 4.2.2 Mailbox quota exceeded', 'mailbox-full', 'soft', false],
  ],
  'mail.ru and yandex': [
    ['550 Message was not accepted -- invalid mailbox.  Local mailbox someone@mail.ru is unavailable: user not found', 'invalid-recipient', 'hard', false],
    ['550 Message was not accepted -- invalid mailbox.  Local mailbox someone@mail.ru is unavailable: account is disabled', 'inactive-mailbox', 'hard', false],
    [
      '550 spam message rejected. Please visit http://help.mail.ru/notspam-support/id?c=AbCd or report details to abuse@corp.mail.ru. Error code: 1A2B3C. ID: 00000000.',
      'spam-block',
      'hard',
      true,
    ],
    ['550 5.7.1 No such user!', 'invalid-recipient', 'hard', false],
    ['554 5.7.1 [2] Message rejected under suspicion of SPAM; https://ya.cc/1IrBc 1710250000-abcdEFGH', 'spam-block', 'hard', true],
    ['552 5.2.2 Mailbox size limit exceeded', 'mailbox-full', 'soft', false],
  ],
  'zoho, comcast, t-online': [
    ['550 5.1.1 User does not exist - <someone@zoho.com>', 'invalid-recipient', 'hard', false],
    ['550 5.1.1 <someone@comcast.net> Not our Customer', 'invalid-recipient', 'hard', false],
    [
      '554 resimta-h1p-028598.sys.comcast.net resimta-h1p-028598.sys.comcast.net 192.0.2.10 found on one or more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes.php#BL000001',
      'spam-block',
      'hard',
      true,
    ],
    ['554 IP=192.0.2.10 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.) (BL)', 'spam-block', 'hard', true],
    ['550 5.1.1 <someone@t-online.de>: Recipient address rejected: User unknown', 'invalid-recipient', 'hard', false],
  ],
  'older MTAs (qmail, Courier, Domino, GroupWise, MDaemon, Exchange 2003)': [
    ['Sorry, no mailbox here by that name. (#5.1.1)', 'invalid-recipient', 'hard', false],
    ["Sorry, I couldn't find any host named nowhere.test. (#5.1.2)", 'bad-domain', 'hard', false],
    ["Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)", 'network', 'soft', false],
    ["553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", 'policy', 'hard', true],
    ['No such domain.', 'bad-domain', 'hard', false],
    ['DNS lookup failed.', 'dns', 'soft', false],
    ['User Bob Example (bob@dest.test) not listed in Domino Directory', 'invalid-recipient', 'hard', false],
    ['User not on post office', 'invalid-recipient', 'hard', false],
    ['Name server reports domain name unknown', 'bad-domain', 'hard', false],
    ['The e-mail account does not exist at the organization this message was sent to. (#5.1.1)', 'invalid-recipient', 'hard', false],
    ['554 5.7.1 <bob@dest.test>: Recipient address rejected: Access denied', 'policy', 'hard', true],
  ],
  postfix: [
    ['550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in virtual mailbox table', 'invalid-recipient', 'hard', false],
    ['550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in local recipient table', 'invalid-recipient', 'hard', false],
    [
      '450 4.1.1 <bob@dest.test>: Recipient address rejected: unverified address: host mx.dest.test[192.0.2.20] said: 550 5.1.1 User unknown',
      'invalid-recipient',
      'soft',
      false,
    ],
    ['450 4.2.0 <bob@dest.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/dest.test.html', 'greylist', 'soft', false],
    [
      '554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10',
      'spam-block',
      'hard',
      true,
    ],
    ['450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.10]', 'auth-failure', 'soft', true, 'ptr'],
    ['504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname', 'policy', 'hard', true],
    ['454 4.7.1 <bob@other.test>: Relay access denied', 'policy', 'soft', true],
    ['554 5.7.1 <bob@other.test>: Relay access denied', 'policy', 'hard', true],
    ['552 5.3.4 Message size exceeds fixed limit', 'protocol', 'hard', true],
    ['450 4.1.2 <bob@nxd.test>: Recipient address rejected: Domain not found', 'bad-domain', 'soft', false],
    ['450 4.1.8 <b+01abc.123@bounce.example.test>: Sender address rejected: Domain not found', 'policy', 'soft', true],
    ['451 4.3.0 <bob@dest.test>: Temporary lookup failure', 'dns', 'soft', false],
    ['503 5.5.1 Error: need RCPT command', 'protocol', 'hard', true],
    ['500 5.5.2 Error: bad syntax', 'protocol', 'hard', true],
    ['421 4.4.2 mx.dest.test Error: timeout exceeded', 'network', 'soft', false],
    ['421 4.7.0 mx.dest.test Error: too many connections from 192.0.2.10', 'rate-limit', 'soft', true],
    ['450 4.7.1 Error: too many recipients from 192.0.2.10', 'rate-limit', 'soft', true],
    ['452 4.5.3 Error: too many recipients', 'protocol', 'soft', true],
  ],
  exim: [
    ['550 No Such User Here', 'invalid-recipient', 'hard', false],
    ['550 Unrouteable address', 'invalid-recipient', 'hard', false],
    ['550-Verification failed for <b+01abc@bounce.example.test> 550-Unrouteable address 550 Sender verify failed', 'policy', 'hard', true],
    ['451-4.7.1 Greylisting in action, please come back later', 'greylist', 'soft', false],
    ['552 Mailbox quota exceeded', 'mailbox-full', 'soft', false],
    ['550 SPF check failed.', 'auth-failure', 'hard', true, 'spf'],
    ['550 Administrative prohibition', 'other', 'hard', false],
    ['451 Temporarily rejected. Try again later.', 'greylist', 'soft', false],
  ],
  sendmail: [
    ['550 5.1.1 <bob@dest.test>... User unknown', 'invalid-recipient', 'hard', false],
    ['552 5.2.2 <bob@dest.test>... Mailbox full', 'mailbox-full', 'soft', false],
    ['553 5.1.8 <b+x@bounce.example.test>... Domain of sender address b+x@bounce.example.test does not exist', 'policy', 'hard', true],
    ['451 4.4.1 reply: read error from mx.dest.test.', 'network', 'soft', false],
    ['554 5.0.0 Service unavailable', 'other', 'hard', false],
    ['451 4.7.1 Please try again later', 'greylist', 'soft', false],
  ],
  mimecast: [
    ['550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [uk-mta-12]', 'invalid-recipient', 'hard', false],
    ['550 Rejected by header based Anti-Spoofing policy: bob@dest.test - https://community.mimecast.com/docs/DOC-1369#550', 'policy', 'hard', true],
    ['554 Email rejected due to security policies - https://community.mimecast.com/docs/DOC-1369#554', 'spam-block', 'hard', true],
    ['550 Envelope blocked - User Entry - https://community.mimecast.com/docs/DOC-1369#550', 'spam-block', 'hard', true],
    ['451 Internal resources are temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451', 'other', 'soft', false],
  ],
  proofpoint: [
    ['554 5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.10', 'spam-block', 'hard', true],
    ['550 5.7.1 User unknown', 'invalid-recipient', 'hard', false],
    ['554 5.7.1 Message blocked due to spam content in the message.', 'spam-block', 'hard', true],
  ],
  barracuda: [
    [
      '554 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation; https://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.10',
      'spam-block',
      'hard',
      true,
    ],
    ['550 permanent failure for one or more recipients (bob@dest.test:blocked)', 'spam-block', 'hard', true],
  ],
  // RFC 3463 section 2: an enhanced code of class 4 is a persistent transient failure. On a 5xx it makes the failure
  // soft (hard until 2 Dec 2026: such a DSN or delivery bounce suppressed the address at once); a 4xx stays soft
  // whatever its enhanced code says (docs/feedback.md, "Reply classification").
  'a 5xx with a temporary enhanced code, a 4xx with a permanent one': [
    ['550 4.2.1 Mailbox temporarily disabled', 'inactive-mailbox', 'soft', false],
    ['554 4.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org', 'spam-block', 'soft', true],
    ['smtp; 550 4.1.1 <bob@dest.test>: Recipient address rejected: User unknown, try again later', 'invalid-recipient', 'soft', false],
    ['550 4.2.2 Mailbox full', 'mailbox-full', 'soft', false],
    ['450 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in local recipient table', 'invalid-recipient', 'soft', false],
    ['550 5.2.1 Mailbox disabled, not accepting messages 4.2.1', 'inactive-mailbox', 'hard', false],
  ],
  'kurir and generic MTAs': [
    ['556 5.1.10 dest.test does not accept mail (null MX)', 'bad-domain', 'hard', false],
    ['550 5.1.2 nx.test: domain does not exist (NXDOMAIN)', 'bad-domain', 'hard', false],
    ['535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6', 'policy', 'hard', true],
    ['530 5.7.0 Must issue a STARTTLS command first', 'auth-failure', 'hard', true, 'tls'],
    ['550 5.7.1 relay not permitted', 'policy', 'hard', true],
    ['451 4.7.1 Service unavailable - try again later', 'greylist', 'soft', false],
    ['550 5.7.23 SPF validation failed', 'auth-failure', 'hard', true, 'spf'],
    ['550 5.7.27 Sender address has null MX', 'policy', 'hard', true],
    ['421 4.3.2 Service not available, closing transmission channel', 'rate-limit', 'soft', true],
    ['message expired before delivery', 'message-expired', 'soft', false],
  ],
  // One row per published authentication code (Gmail's postmaster page lists a code per failed check) and the
  // wording of receivers that say it in words: every one is auth-failure, sender-side, with the check as cause.
  'authentication refusals': [
    [
      '421-4.7.23 The sending IP address for this message does not have a PTR record setup, or the corresponding forward DNS entry does not match the sending IP. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. - gsmtp',
      'auth-failure',
      'soft',
      true,
      'ptr',
    ],
    [
      "421-4.7.27 Your email has been rate limited because SPF authentication didn't pass for this message. Gmail requires all bulk email senders to authenticate with SPF. - gsmtp",
      'auth-failure',
      'soft',
      true,
      'spf',
    ],
    [
      "550-5.7.27 Your email has been blocked because SPF authentication didn't pass for this message. For this message, SPF check for [bounce.example.test] did not pass with ip: [192.0.2.10]. - gsmtp",
      'auth-failure',
      'hard',
      true,
      'spf',
    ],
    [
      "421-4.7.29 Your email has been rate limited because this message wasn't sent over a TLS connection. Gmail requires all bulk email senders to use TLS/SSL for SMTP connections. - gsmtp",
      'auth-failure',
      'soft',
      true,
      'tls',
    ],
    ["550-5.7.29 Your email has been blocked because this message wasn't sent over a TLS connection. - gsmtp", 'auth-failure', 'hard', true, 'tls'],
    [
      "421-4.7.30 Your email has been rate limited because DKIM authentication didn't pass for this message. Gmail requires all email bulk senders to authenticate with DKIM. - gsmtp",
      'auth-failure',
      'soft',
      true,
      'dkim',
    ],
    ["550-5.7.30 Your email has been blocked because DKIM authentication didn't pass for this message. - gsmtp", 'auth-failure', 'hard', true, 'dkim'],
    [
      "421-4.7.32 Your email has been rate limited because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain. - gsmtp",
      'auth-failure',
      'soft',
      true,
      'alignment',
    ],
    [
      "550-5.7.32 Your email has been blocked because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain. - gsmtp",
      'auth-failure',
      'hard',
      true,
      'alignment',
    ],
    [
      '421-4.7.40 Your email has been rate limited because DMARC policy is not present for the sender domain. Gmail requires all bulk email senders to publish a DMARC record. - gsmtp',
      'auth-failure',
      'soft',
      true,
      'dmarc',
    ],
    ['550-5.7.40 Your email has been blocked because the sender domain does not publish a DMARC record. - gsmtp', 'auth-failure', 'hard', true, 'dmarc'],
    [
      '550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. Authentication results: DKIM = did not pass SPF [example.test] with ip: [192.0.2.10] = did not pass - gsmtp',
      'auth-failure',
      'hard',
      true,
      'unauthenticated',
    ],
    [
      "550 5.7.515 Access denied, sending domain [EXAMPLE.TEST] doesn't meet the required authentication level.",
      'auth-failure',
      'hard',
      true,
      'unauthenticated',
    ],
    ['550 5.7.23 The message was rejected because of Sender Policy Framework violation', 'auth-failure', 'hard', true, 'spf'],
    ["550 5.7.9 Unauthenticated email from example.test is not accepted due to domain's DMARC policy", 'auth-failure', 'hard', true, 'dmarc'],
    ["553 5.7.1 Message rejected: example.test DMARC policy is 'reject'", 'auth-failure', 'hard', true, 'dmarc'],
    ['554 5.7.5 Permanent error evaluating DMARC policy', 'auth-failure', 'hard', true, 'dmarc'],
    ['550 5.7.1 Email rejected per DMARC policy for example.test', 'auth-failure', 'hard', true, 'dmarc'],
    [
      '550 5.7.1 <b+01abc.123@bounce.example.test>: Sender address rejected: not authorized by SPF (sender: bounce.example.test, ip: 192.0.2.10)',
      'auth-failure',
      'hard',
      true,
      'spf',
    ],
    ['550 Rejected: 192.0.2.10 is not authorized by the Sender Policy Framework record of example.test', 'auth-failure', 'hard', true, 'spf'],
    [
      '550 5.7.23 <bob@dest.test>: Recipient address rejected: Message rejected due to: SPF fail - not authorized. Please see http://www.openspf.net/Why?s=mfrom;id=b@bounce.example.test;ip=192.0.2.10',
      'auth-failure',
      'hard',
      true,
      'spf',
    ],
    ['550 5.7.20 No passing DKIM signature found', 'auth-failure', 'hard', true, 'dkim'],
    ['554 5.7.1 DKIM signature verification failed: body hash mismatch', 'auth-failure', 'hard', true, 'dkim'],
    ['550 5.7.1 Message rejected: From domain is not aligned with the authenticated domain', 'auth-failure', 'hard', true, 'alignment'],
    ['550 5.7.1 Client host rejected: cannot find your hostname, [192.0.2.10]', 'auth-failure', 'hard', true, 'ptr'],
    ['554 5.7.1 Message is not authenticated: rejected', 'auth-failure', 'hard', true, 'unauthenticated'],
    // Not about the receiver checking our mail: SMTP AUTH to a smarthost, a block list, a null MX sender.
    ['530 5.7.0 Authentication required', 'policy', 'hard', true],
    ['535 Authentication failed', 'policy', 'hard', true],
    ['550 5.7.27 Sender address has null MX', 'policy', 'hard', true],
  ],
  // Smarthosts (ESP and company relays) refusing Kurir itself: its relaying, sender identity or account.
  smarthosts: [
    ['553 5.7.1 <b+01abc.123@bounce.example.test>: Sender address rejected: not owned by user kurir', 'policy', 'hard', true],
    ['550 5.7.60 SMTP; Client does not have permissions to send as this sender', 'policy', 'hard', true],
    [
      '554 5.2.252 SendAsDenied; kurir@example.test not allowed to send as noreply@example.test; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied',
      'policy',
      'hard',
      true,
    ],
    [
      "550 5.7.1 Invalid credentials for relay [192.0.2.10]. The IP address you've registered in your Workspace SMTP Relay service doesn't match domain of the account this email is being sent from.",
      'policy',
      'hard',
      true,
    ],
    [
      '554 Message rejected: Email address is not verified. The following identities failed the check in region EU-WEST-1: noreply@example.test',
      'policy',
      'hard',
      true,
    ],
    ['550 The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved.', 'policy', 'hard', true],
    ['550 5.7.0 Mail relay denied [192.0.2.10]', 'policy', 'hard', true],
  ],
  'no SMTP reply': [
    ['connect ECONNREFUSED 127.0.0.2:25', 'network', 'soft', false],
    ['Connection timeout', 'network', 'soft', false],
    ['Greeting never received', 'network', 'soft', false],
    ['Client network socket disconnected before secure TLS connection was established', 'network', 'soft', false],
    ['Connection closed unexpectedly', 'network', 'soft', false],
    ['no route', 'network', 'soft', false],
    ['DNS: dest.test: MX lookup failed (ESERVFAIL)', 'dns', 'soft', false],
    ['queryMx ETIMEOUT dest.test', 'dns', 'soft', false],
    ['getaddrinfo ENOTFOUND mx.dest.test', 'dns', 'soft', false],
  ],
};

const rows = Object.entries(table).flatMap(([source, list]) =>
  list.map(([reply, category, type, senderSide, cause]): [string, string, BounceCategory, 'hard' | 'soft', boolean | undefined, AuthCause | undefined] => [
    source,
    reply,
    category,
    type,
    senderSide,
    cause,
  ]),
);

describe('bounce rules: real-world replies', () => {
  it('covers at least 140 replies', () => {
    expect(rows.length).toBeGreaterThanOrEqual(140);
  });

  it('gives every authentication refusal a cause, every cause a reply, and nothing else a cause', () => {
    const auth = rows.filter((r) => r[2] === 'auth-failure');
    for (const r of auth) expect(r[5], r[1]).toBeDefined();
    expect(new Set(auth.map((r) => r[5]))).toEqual(new Set(AUTH_CAUSES));
    for (const r of rules.rules) expect(r.cause !== undefined, r.id).toBe(r.category === 'auth-failure');
  });

  it.each(rows)('%s: %s', (_source, reply, category, type, senderSide, cause) => {
    const got = classifyReply(rules, parseReply(reply));
    expect({ category: got.category, type: got.type, cause: got.cause }).toEqual({ category, type, cause });
    if (senderSide !== undefined) expect(got.senderSide).toBe(senderSide);
    expect(rules.rules.some((r) => r.id === got.ruleId)).toBe(true);
  });
});

describe('bounce rules: structured input (DSN fields)', () => {
  const cases: Array<[ReplyInput, BounceCategory, 'hard' | 'soft']> = [
    [{ code: null, enhanced: '5.1.1', text: '' }, 'invalid-recipient', 'hard'],
    [{ code: null, enhanced: '4.2.2', text: '' }, 'mailbox-full', 'soft'],
    [{ code: null, enhanced: '5.4.7', text: 'Delivery time expired' }, 'message-expired', 'soft'],
    [{ code: null, enhanced: '4.4.7', text: '' }, 'message-expired', 'soft'],
    [{ code: 550, enhanced: '5.7.26', text: 'smtp; 550-5.7.26 Unauthenticated email is not accepted' }, 'auth-failure', 'hard'],
    [{ code: 550, text: 'Requested action not taken: mailbox unavailable' }, 'invalid-recipient', 'hard'],
    [{ code: null, text: '' }, 'network', 'soft'],
    [{ code: 599, text: '' }, 'other', 'hard'],
    [{ code: 499, text: '' }, 'other', 'soft'],
  ];
  it.each(cases)('%j', (input, category, type) => {
    expect(classifyReply(rules, input)).toMatchObject({ category, type });
  });

  it('takes the enhanced code given over the one in the text', () => {
    expect(classifyReply(rules, { code: 550, enhanced: '5.2.2', text: '550 5.1.1 whatever' }).category).toBe('mailbox-full');
  });

  it('makes every 4xx soft, whatever the rule says', () => {
    expect(classifyReply(rules, parseReply('450 4.1.1 <x@dest.test>: Recipient address rejected: User unknown'))).toMatchObject({
      category: 'invalid-recipient',
      type: 'soft',
    });
  });
});

describe('parseReply and extractEnhanced', () => {
  it('splits code, enhanced code and text', () => {
    expect(parseReply('  550-5.1.1 The email account  ')).toEqual({ code: 550, enhanced: '5.1.1', text: '550-5.1.1 The email account' });
    expect(parseReply('smtp; 421 4.7.28 slow down')).toMatchObject({ code: 421, enhanced: '4.7.28' });
    expect(parseReply('connect ECONNREFUSED 127.0.0.2:25')).toEqual({ code: null, enhanced: null, text: 'connect ECONNREFUSED 127.0.0.2:25' });
    expect(parseReply('554')).toMatchObject({ code: 554, enhanced: null });
  });

  it('ignores IP addresses and version numbers', () => {
    expect(extractEnhanced('Client host [5.9.1.2] blocked')).toBeNull();
    expect(extractEnhanced('see 4.16.55.1 and 2.0.0')).toBe('2.0.0');
    expect(extractEnhanced('550 5.7.515 Access denied, 5322.From')).toBe('5.7.515');
  });
});

describe('bounce rules file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kurir-rules-'));
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('uses exactly the metric categories (minus "none") and every category appears in the default rules', () => {
    expect([...BOUNCE_CATEGORIES].sort()).toEqual(DELIVERY_CATEGORIES.filter((c) => c !== 'none').sort());
    expect(new Set(rules.rules.map((r) => r.category))).toEqual(new Set(BOUNCE_CATEGORIES));
  });

  it('has unique ids and ends in a catch-all', () => {
    expect(new Set(rules.rules.map((r) => r.id)).size).toBe(rules.rules.length);
    expect(rules.rules.at(-1)?.id).toBe('catch-all');
  });

  it('flags policy and spam-block as sender-side by default, recipient problems not', () => {
    const byCategory = (c: string) => rules.rules.filter((r) => r.category === c);
    for (const r of [...byCategory('policy'), ...byCategory('spam-block')]) expect(r.senderSide, r.id).toBe(true);
    for (const r of [...byCategory('invalid-recipient'), ...byCategory('inactive-mailbox'), ...byCategory('bad-domain'), ...byCategory('mailbox-full')]) {
      expect(r.senderSide, r.id).toBe(false);
    }
  });

  it('lets operators prepend their own rule without code changes, first match wins', () => {
    const file = write(
      'custom.yaml',
      `rules:
  - id: acme-vacation
    match: { code: 5xx, enhanced: '5.2.*', text: 'on vacation' }
    category: inactive-mailbox
    type: soft
    senderSide: false
  - id: everything-else
    match: {}
    category: other
    type: hard
`,
    );
    const custom = loadBounceRules(file);
    expect(classifyReply(custom, parseReply('550 5.2.1 bob is ON VACATION'))).toEqual({
      category: 'inactive-mailbox',
      type: 'soft',
      senderSide: false,
      ruleId: 'acme-vacation',
    });
    expect(classifyReply(custom, parseReply('550 5.1.1 bob is on vacation'))).toMatchObject({ ruleId: 'everything-else', category: 'other', type: 'hard' });
    expect(classifyReply(custom, parseReply('450 5.2.1 on vacation'))).toMatchObject({ ruleId: 'everything-else', type: 'soft' });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    [
      'a bad regular expression',
      {
        rules: [
          { id: 'x', match: { text: 'user (unknown' }, category: 'other', type: 'hard' },
          { id: 'z', category: 'other', type: 'soft' },
        ],
      },
      /rules\[0\] \(id "x"\): match\.text: not a valid regular expression/,
    ],
    [
      'an unknown category',
      {
        rules: [
          { id: 'a', category: 'other', type: 'hard', match: { code: '5xx' } },
          { id: 'b', category: 'bounced-ish', type: 'hard' },
        ],
      },
      /rules\[1\] \(id "b"\): category: "bounced-ish" is not one of invalid-recipient, .*message-expired, other/,
    ],
    [
      'a bad code',
      {
        rules: [
          { id: 'a', match: { code: '5x' }, category: 'other', type: 'hard' },
          { id: 'b', category: 'other', type: 'soft' },
        ],
      },
      /rules\[0\] \(id "a"\): match\.code: a reply code like "550"/,
    ],
    [
      'a bad code in a list',
      {
        rules: [
          { id: 'a', match: { code: ['550', 'six'] }, category: 'other', type: 'hard' },
          { id: 'b', category: 'other', type: 'soft' },
        ],
      },
      /rules\[0\] \(id "a"\): match\.code\.1: a reply code like "550"/,
    ],
    [
      'a bad enhanced glob',
      {
        rules: [
          { id: 'a', match: { enhanced: '5.7.x' }, category: 'policy', type: 'hard' },
          { id: 'b', category: 'other', type: 'soft' },
        ],
      },
      /rules\[0\] \(id "a"\): match\.enhanced: an enhanced status code or glob/,
    ],
    ['a missing type', { rules: [{ id: 'a', category: 'other' }] }, /rules\[0\] \(id "a"\): type: required/],
    [
      'an auth-failure without its cause',
      {
        rules: [
          { id: 'a', match: { enhanced: '5.7.26' }, category: 'auth-failure', type: 'hard' },
          { id: 'b', category: 'other', type: 'soft' },
        ],
      },
      /rules\[0\] \(id "a"\): cause: required with category auth-failure \(one of ptr, spf, dkim, dmarc, alignment, tls, unauthenticated\)/,
    ],
    [
      'a cause on another category',
      { rules: [{ id: 'a', category: 'policy', cause: 'dkim', type: 'hard' }] },
      /rules\[0\] \(id "a"\): cause: only allowed with category auth-failure/,
    ],
    [
      'an unknown cause',
      { rules: [{ id: 'a', category: 'auth-failure', cause: 'arc', type: 'hard' }] },
      /rules\[0\] \(id "a"\): cause: "arc" is not one of ptr, spf/,
    ],
    [
      'refusesClient on a rule that is not sender-side',
      { rules: [{ id: 'a', category: 'invalid-recipient', refusesClient: true, type: 'hard' }] },
      /rules\[0\] \(id "a"\): refusesClient: only allowed on a sender-side rule/,
    ],
    [
      'an auth-failure that is not sender-side',
      { rules: [{ id: 'a', category: 'auth-failure', cause: 'spf', senderSide: false, type: 'hard' }] },
      /rules\[0\] \(id "a"\): senderSide: an authentication refusal is always sender-side/,
    ],
    ['a bad type', { rules: [{ id: 'a', category: 'other', type: 'permanent' }] }, /rules\[0\] \(id "a"\): type: "permanent" is not one of hard, soft/],
    [
      'a misspelt match field',
      {
        rules: [
          { id: 'a', match: { texts: 'x' }, category: 'other', type: 'hard' },
          { id: 'b', category: 'other', type: 'soft' },
        ],
      },
      /rules\[0\] \(id "a"\): match: unknown field\(s\) texts/,
    ],
    [
      'a misspelt rule field',
      { rules: [{ id: 'a', category: 'other', type: 'hard', sender_side: true }] },
      /rules\[0\] \(id "a"\): unknown field\(s\) sender_side/,
    ],
    ['a missing id', { rules: [{ category: 'other', type: 'hard' }] }, /rules\[0\]: id: required/],
    [
      'a duplicate id',
      {
        rules: [
          { id: 'a', match: { code: '550' }, category: 'other', type: 'hard' },
          { id: 'a', category: 'other', type: 'soft' },
        ],
      },
      /rules\[1\] \(id "a"\): id: duplicate of rules\[0\]/,
    ],
    [
      'no final catch-all',
      { rules: [{ id: 'a', match: { code: '550' }, category: 'other', type: 'hard' }] },
      /rules\[0\] \(id "a"\): match: the last rule must be a catch-all/,
    ],
    ['no rules list', { rule: [] }, /unknown field\(s\) rule.*expected a mapping with a "rules:" list/],
    ['an empty rules list', { rules: [] }, /rules: at least one rule/],
  ];
  it.each(bad)('refuses %s, naming the rule and field', (_what, doc, message) => {
    expect(() => compileBounceRules(doc, 'test.yaml')).toThrow(BounceRulesError);
    expect(() => compileBounceRules(doc, 'test.yaml')).toThrow(message);
  });

  it('reports every problem at once, with the file name', () => {
    const file = write(
      'bad.yaml',
      `rules:\n  - id: one\n    match: { text: '[' }\n    category: nope\n    type: hard\n  - id: two\n    category: other\n    type: soft\n`,
    );
    let message = '';
    try {
      loadBounceRules(file);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`${file}: invalid bounce rules:`);
    expect(message).toMatch(/rules\[0\] \(id "one"\): category: "nope" is not one of/);
  });

  it('names a missing or unparsable file', () => {
    expect(() => loadBounceRules(join(dir, 'missing.yaml'))).toThrow(/missing\.yaml: cannot read bounce rules: file not found/);
    expect(() => loadBounceRules(write('broken.yaml', 'rules: [ {'))).toThrow(/broken\.yaml: cannot read bounce rules/);
  });

  it('is configured by feedback.rulesFile, defaulting to config/bounce-rules.yaml', () => {
    expect(configSchema.parse({}).feedback.rulesFile).toBe('config/bounce-rules.yaml');
    expect(configSchema.parse({ feedback: { rulesFile: '/etc/kurir/rules.yaml' } }).feedback.rulesFile).toBe('/etc/kurir/rules.yaml');
  });
});
