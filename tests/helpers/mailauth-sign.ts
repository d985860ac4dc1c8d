/**
 * mailauth's `dkimSign` for tests that need a signature made by code Kurir did not write (a feedback loop's
 * report, a third party's message), with the one option those tests must not leave out.
 */
import { dkimSign, type DkimSignOptions, type DkimSignResult, type MessageInput } from 'mailauth';

/**
 * Signs `input` like `dkimSign`, with the signing time fixed once for the whole call.
 *
 * Why: without `signTime`, mailauth 4.13 takes `t=` from the clock twice, rounded to the second — once for the
 * header data it signs and once for the header it writes, with the RSA signature computed in between. When
 * the two reads fall on either side of a half second (about 1 signature in 300 on a 2-core machine) the written
 * `t=` differs from the signed one and the signature never verifies: a test that expects "DKIM pass" then fails
 * at random. Kurir's own signer (src/dkim/sign-core.ts) always passes its signing time and is not affected.
 */
export function dkimSignOnce(input: MessageInput, options: DkimSignOptions): Promise<DkimSignResult> {
  return dkimSign(input, { signTime: new Date(), ...options });
}
