"""The shop's admin console: pages for the people who run the shop, served through the
gateway at /admin/. No database of its own: every page is made of calls to the public API
(through the gateway) with the signed-in admin's token, so every rule stays in the service
that owns it."""
