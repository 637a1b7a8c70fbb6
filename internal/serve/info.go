package serve

import (
	"encoding/json"
	"net/http"
)

// Info is GET /v1/info.
type Info struct {
	Version  string       `json:"version"`
	Model    ModelInfo    `json:"model"`
	Index    IndexInfo    `json:"index"`
	Captions *IndexInfo   `json:"captions,omitempty"`
	Compare  *CompareInfo `json:"compare,omitempty"`
	// Report is the fine-tune's report (index --report), as it is.
	Report json.RawMessage `json:"report,omitempty"`
	Limits Limits          `json:"limits"`
}

// ModelInfo names a model.
type ModelInfo struct {
	Source string `json:"source"`
	Hash   string `json:"hash"`
	Dim    int    `json:"dim"`
}

// IndexInfo describes an open bundle.
type IndexInfo struct {
	Dir        string          `json:"dir"`
	Kind       string          `json:"kind"`
	Count      int             `json:"count"`
	Dim        int             `json:"dim"`
	Metric     string          `json:"metric"`
	Splits     map[string]int  `json:"splits"`
	Provenance json.RawMessage `json:"provenance,omitempty"`
	Generation int64           `json:"generation"` // 1, then one more per reload
}

// CompareInfo is the compare bundle and its model.
type CompareInfo struct {
	Model ModelInfo `json:"model"`
	Index IndexInfo `json:"index"`
}

// Limits are the server's bounds on a request.
type Limits struct {
	MaxTopK      int     `json:"max_top_k"`
	MaxOffset    int     `json:"max_offset"`
	MaxTerms     int     `json:"max_terms"`
	MaxUpload    int64   `json:"max_upload_bytes"`
	MaxPixels    int64   `json:"max_pixels"`
	TimeoutSecs  float64 `json:"timeout_seconds"`
	Queue        int     `json:"queue"`
	MaxBatch     int     `json:"max_batch"`
	TokenNeeded  bool    `json:"token"`
	BatchWindowS float64 `json:"batch_window_seconds"`
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	st := s.acquire()
	defer st.release()
	o := s.o
	in := Info{
		Version: o.Version,
		Model:   modelInfo(o.Model),
		Index:   indexInfo(st.images, st.gen),
		Report:  st.images.b.Report(),
		Limits: Limits{MaxTopK: MaxTopK, MaxOffset: MaxOffset, MaxTerms: MaxTerms, MaxUpload: o.MaxUpload,
			MaxPixels: o.MaxPixels, TimeoutSecs: o.Timeout.Seconds(), Queue: o.Queue, MaxBatch: o.MaxBatch,
			TokenNeeded: o.Token != "", BatchWindowS: o.BatchWindow.Seconds()},
	}
	if st.captions != nil {
		c := indexInfo(st.captions, st.gen)
		in.Captions = &c
	}
	if st.other != nil {
		in.Compare = &CompareInfo{Model: modelInfo(o.CompareModel), Index: indexInfo(st.other, st.gen)}
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}

func modelInfo(m Model) ModelInfo { return ModelInfo{Source: m.Source, Hash: m.Hash, Dim: m.Enc.Dim()} }

func indexInfo(l *loaded, gen int64) IndexInfo {
	splits := map[string]int{}
	for name, in := range l.splits {
		splits[name] = in.n
	}
	return IndexInfo{Dir: l.dir, Kind: l.m.Kind, Count: l.b.Len(), Dim: l.m.Dim, Metric: l.m.Metric,
		Splits: splits, Provenance: l.m.Provenance, Generation: gen}
}

// reloadHandler is POST /v1/admin/reload: Reload, answering the new counts
// or, when the new bundles cannot be served, 409 with the reason (the old
// ones stay).
func (s *Server) reloadHandler(w http.ResponseWriter, r *http.Request) error {
	counts, err := s.Reload()
	if err != nil {
		return errorf(http.StatusConflict, "reload failed, the previous bundles stay: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "counts": counts})
	return nil
}
