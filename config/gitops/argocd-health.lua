-- Argo CD health check of the resilience.dev policies (RateLimit, CircuitBreaker, RetryPolicy).
-- argocd-cm-health.yaml carries this same script for each kind (test/gitops checks they match).
--
--   Degraded     Accepted is False: the policy is refused (Invalid, Conflicted, TargetNotFound);
--                the message says why, so fix the policy or its target.
--   Progressing  no status yet, status of an older generation, or Programmed not True
--                (Pending, NoGateways): the gateways have not applied this generation yet.
--   Healthy      Ready is True: accepted and enforced by every connected gateway replica.
--
-- Only Lua's base library is used: Argo CD opens no string library unless
-- resource.customizations.useOpenLibs is set.
local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.reason or c.status
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation or 0
local observed = obj.status.observedGeneration or 0
if observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation .. " (status is of " .. observed .. ")"
  return hs
end

local conditions = obj.status.conditions
local accepted = condition(conditions, "Accepted")
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = "Not accepted: " .. describe(accepted)
  return hs
end

local ready = condition(conditions, "Ready")
local programmed = condition(conditions, "Programmed")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready == nil and accepted ~= nil and accepted.status == "True" and programmed ~= nil and programmed.status == "True" then
  -- An operator older than the Ready condition.
  hs.status = "Healthy"
  hs.message = "Accepted and programmed"
  return hs
end

hs.status = "Progressing"
if programmed ~= nil and programmed.status ~= "True" then
  hs.message = "Not programmed yet: " .. describe(programmed)
elseif accepted == nil then
  hs.message = "Waiting for the Accepted condition"
elseif ready ~= nil then
  hs.message = "Not ready: " .. describe(ready)
else
  hs.message = "Waiting for the Programmed condition"
end
return hs
