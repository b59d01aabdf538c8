// Drives the tenant family (seed 003) with epilot's published client,
// @epilot/sdk, as an epilot user would: only the base URL changes.
// tests/epilot_client.rs serves the tenant router and runs this with
//   BASE_URL       the router's address (http://127.0.0.1:PORT)
//   SECRET_KEY     a secret key of the project
//   SESSION_TOKEN  a session of the organization's owner, `org_id` = ORG_ID
//   ORG_ID         an organization the owner created
// Exits non-zero, saying which expectation failed, on any mismatch.
import { authorize, createClient } from '@epilot/sdk/organization'
import { isDeepStrictEqual } from 'node:util'

const env = (name) => {
  const value = process.env[name]
  if (!value) fail(`${name} is not set`)
  return value
}

function fail(message) {
  console.error(`epilot client check: ${message}`)
  process.exit(1)
}

function expectEqual(what, actual, expected) {
  if (!isDeepStrictEqual(actual, expected)) {
    fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
  }
}

// The client throws on any answer outside 2xx; say which call it was.
async function step(what, call) {
  try {
    return await call()
  } catch (error) {
    const answer = error.response
      ? `${error.response.status} ${JSON.stringify(error.response.data)}`
      : String(error)
    fail(`${what} failed: ${answer}`)
  }
}

function client(base, token) {
  const api = createClient()
  api.defaults.baseURL = base
  authorize(api, () => token)
  return api
}

const base = env('BASE_URL')
const org_id = env('ORG_ID')
const secret = client(base, env('SECRET_KEY'))
const session = client(base, env('SESSION_TOKEN'))

// The organization.
const current = await step('getCurrentOrganization', () => session.getCurrentOrganization())
expectEqual('getCurrentOrganization id', current.data.id, org_id)
const read = await step('getOrganization', () => secret.getOrganization({ org_id }))
expectEqual('getOrganization id', read.data.id, org_id)
expectEqual('getOrganization name', read.data.name, current.data.name)

const patch = {
  email: 'info@acme.example',
  website: 'https://acme.example',
  pricing_tier: 'professional',
  address: { city: 'Cologne', country: 'Germany' },
  tags: ['customer'],
}
const updated = await step('updateOrganization', () => secret.updateOrganization({ org_id }, patch))
for (const field of ['email', 'website', 'pricing_tier', 'tags']) {
  expectEqual(`updateOrganization ${field}`, updated.data[field], patch[field])
}
expectEqual('updateOrganization address.city', updated.data.address?.city, 'Cologne')
const again = await step('getOrganization after the update', () => secret.getOrganization({ org_id }))
expectEqual('the update as read back', again.data.email, patch.email)
// An owner's session changes the profile but not what decides the price.
const owner = await step('updateOrganization by the owner', () =>
  session.updateOrganization({ org_id }, { signature: '<p>Thanks</p>' }),
)
expectEqual('the owner’s update', owner.data.signature, '<p>Thanks</p>')
try {
  await session.updateOrganization({ org_id }, { pricing_tier: 'enterprise' })
  fail('an owner’s session changed pricing_tier')
} catch (error) {
  expectEqual('an owner’s session changing pricing_tier', error.response?.status, 403)
}

// Settings: a string goes out as axios sends one (raw text, form-urlencoded).
const language = await step("putSettingsValue 'de'", () =>
  secret.putSettingsValue({ org_id, key: 'language' }, 'de'),
)
expectEqual("putSettingsValue 'de' answer", language.data, 'de')
const sent = language.config
expectEqual("putSettingsValue 'de' body as sent", sent.data, 'de')
expectEqual(
  "putSettingsValue 'de' content type as sent",
  String(sent.headers['Content-Type']).split(';')[0],
  'application/x-www-form-urlencoded',
)
const optIn = await step('putSettingsValue {enabled: true}', () =>
  secret.putSettingsValue({ org_id, key: 'double_opt_in' }, { enabled: true }),
)
expectEqual('putSettingsValue object answer', optIn.data, { enabled: true })
const tracking = { enabled: true, track_opens: false, domains: ['acme.example'] }
await step('putSettingsValue by the owner', () =>
  session.putSettingsValue({ org_id, key: 'email_tracking' }, tracking),
)
const settings = await step('getSettings', () => secret.getSettings({ org_id }))
expectEqual('getSettings', settings.data, {
  language: 'de',
  double_opt_in: { enabled: true },
  email_tracking: tracking,
})
const replaced = await step("putSettingsValue 'en' over 'de'", () =>
  secret.putSettingsValue({ org_id, key: 'language' }, 'en'),
)
expectEqual('the replaced setting', replaced.data, 'en')
await step('deleteSettingsValue', () => secret.deleteSettingsValue({ org_id, key: 'double_opt_in' }))
const remaining = await step('getSettings after the delete', () => session.getSettings({ org_id }))
expectEqual('getSettings after the delete', remaining.data, {
  language: 'en',
  email_tracking: tracking,
})

// Feature settings for the session's current organization.
const features = await step('getOrganizationFeatureSettings', () =>
  session.getOrganizationFeatureSettings(),
)
if (typeof features.data !== 'object' || features.data === null) {
  fail(`getOrganizationFeatureSettings: expected an object, got ${JSON.stringify(features.data)}`)
}

// Refusals reach the caller as the client's errors.
const unknown = '00000000-0000-7000-8000-000000000000'
try {
  await secret.getOrganization({ org_id: unknown })
  fail('getOrganization of an unknown id succeeded')
} catch (error) {
  expectEqual('getOrganization of an unknown id', error.response?.status, 404)
}

console.log('epilot client check: every operation as expected')
