-- Shared by the bench scripts: print one JSON line of results for bench.py to read.
function done(summary, latency, requests)
    local errors = summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.status + summary.errors.timeout
    io.write(string.format(
        '\nBENCH {"requests":%d,"seconds":%.3f,"errors":%d,"non2xx":%d,' ..
        '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f}\n',
        summary.requests, summary.duration / 1e6, errors, summary.errors.status,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000))
end
