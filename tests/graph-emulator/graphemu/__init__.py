"""graphemu: a stateful Microsoft Graph + identity platform emulator on loopback HTTPS.

The ground truth keydesk's Graph client, flows and tracking are tested against, and what demo
mode runs on. Shapes, status codes, errors, permissions and throttling follow
../shared/reference/graph-api.md; where in doubt it is at least as strict as Graph.
"""
