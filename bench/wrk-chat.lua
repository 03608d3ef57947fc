-- wrk script: POST a small OpenAI chat request and print a machine-readable summary.
--   BENCH_MODEL   model name to send      (default gpt-4o-mini)
--   BENCH_STREAM  "1" adds "stream": true (default off)
-- (A copy of the shared harness's script, so that bench/ runs on its own.)
-- Usage: wrk -t1 -c16 -d10s --timeout 5s -s wrk-chat.lua http://127.0.0.1:PORT/v1/chat/completions
-- wrk counts non-2xx/3xx answers as errors.status; latency is measured to the last byte.
local model = os.getenv("BENCH_MODEL") or "gpt-4o-mini"
local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench-client")
wrk.body = '{"model":"' .. model .. '","messages":[' ..
  '{"role":"system","content":"You are a helpful assistant."},' ..
  '{"role":"user","content":"Say hello in one short sentence."}],' ..
  '"max_tokens":32,"temperature":0' .. (stream and ',"stream":true' or '') .. '}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"stdev_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, latency.stdev))
end
