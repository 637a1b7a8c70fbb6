package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus collectors, on a registry of its own
// (so that several servers, as in tests, do not collide).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec   // endpoint, code
	latency    *prometheus.HistogramVec // endpoint
	batchSize  *prometheus.HistogramVec // model, kind
	queueDepth *prometheus.GaugeVec     // model
	rejected   *prometheus.CounterVec   // model: 503s of a full queue
	reloads    *prometheus.CounterVec   // result
	items      *prometheus.GaugeVec     // index: rows of each open bundle
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clipline_serve_requests_total", Help: "HTTP requests by endpoint (route pattern) and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clipline_serve_request_duration_seconds", Help: "HTTP request latency by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}, []string{"endpoint"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clipline_serve_encode_batch_size", Help: "Texts or images per encoder call.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}, []string{"model", "kind"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clipline_serve_queue_depth", Help: "Encodes waiting for the model.",
		}, []string{"model"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clipline_serve_queue_rejected_total", Help: "Encodes refused (503) because the queue was full.",
		}, []string{"model"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clipline_serve_reloads_total", Help: "Bundle reloads (SIGHUP or POST /v1/admin/reload) by result.",
		}, []string{"result"}),
		items: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clipline_serve_index_items", Help: "Rows of each open index bundle.",
		}, []string{"index"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.batchSize, m.queueDepth, m.rejected, m.reloads, m.items,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
