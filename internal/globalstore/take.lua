-- One atomic step on a Global limit's bucket: the Lua twin of globallimit.Take (read that first; the
-- two are tested against each other). Every number stays an integer under 2^53, so Lua's doubles
-- compute exactly what Go's int64 do; divisions go through idiv, which corrects the float quotient.
--
-- KEYS[1]  the bucket
-- ARGV     requests, period (µs), burst, want, give back, now (µs; empty: the store's own clock)
-- state    "<micros> <frac>": the theoretical arrival time of the next token, micros + frac/requests
-- reply    {granted, remaining, retry after (µs)}
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

local requests, period, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want, give = tonumber(ARGV[4]), tonumber(ARGV[5])
if not (requests and period and burst and want and give) or requests < 1 or period < 1 or burst < 1 then
  return redis.error_reply('ERR resilience: bad arguments')
end
local now = tonumber(ARGV[6])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local micros, frac = 0, 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local a, b = string.match(stored, '^(%d+) (%d+)$')
  if not a then return redis.error_reply('ERR resilience: corrupt bucket state') end
  micros, frac = tonumber(a), tonumber(b)
end

local owed = 0
if micros > now or (micros == now and frac > 0) then owed = (micros - now) * requests + frac end
owed = math.max(owed - math.min(math.max(give, 0), burst) * period, 0)
local capacity = burst * period
local avail = math.max(idiv(capacity - owed, period), 0)
local granted = math.min(math.max(want, 0), avail)
owed = owed + granted * period

local retry = 0
if granted == 0 and want > 0 then
  local units = owed - (capacity - period)
  if units > 0 then retry = idiv(units + requests - 1, requests) end
end

if owed == 0 then
  redis.call('DEL', KEYS[1])
else
  local ahead = idiv(owed, requests)
  local state = string.format('%.0f %.0f', now + ahead, owed - ahead * requests)
  redis.call('SET', KEYS[1], state, 'PX', idiv(ahead + 1 + 999, 1000))
end
return {granted, avail - granted, retry}
