package serve

import (
	"bytes"
	"container/list"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/clipline/clipline/internal/imageproc"
)

// Thumbnail limits: widths asked for with ?w=N, and the widest one cached.
const (
	maxThumbWidth  = 2048
	maxCachedWidth = 512
	thumbQuality   = 85
)

// image is GET /v1/images/{image_id}[?w=N]: the indexed image's file, or a
// thumbnail N pixels wide (never wider than the image). Only ids of the
// images bundle are served, from the image_bytes the bundle holds or else
// the path it records; nothing a client sends becomes part of a path.
func (s *Server) image(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("image_id")
	width := 0
	if v := r.URL.Query().Get("w"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxThumbWidth {
			return errorf(http.StatusBadRequest, "w=%q: want a width from 1 to %d", v, maxThumbWidth)
		}
		width = n
	}
	st := s.acquire()
	row, ok := st.images.b.RowOf(id)
	var path string
	var data []byte
	var gen int64
	if ok {
		// A copy: the bundle's map may go with a reload once released.
		if data = bytes.Clone(st.images.b.ImageBytes(row)); data == nil {
			path = st.images.path(st.images.b.Item(row))
		}
		gen = st.gen
	}
	modTime := st.images.modTime
	st.release()
	if !ok {
		return errorf(http.StatusNotFound, "image_id %q is not in the index", id)
	}
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if data != nil {
		// The image inside the bundle: keyed by the bundle's generation.
		return s.serveImage(w, r, id, fmt.Sprintf("\x00%d\x00%s", gen, id), modTime, width, bytes.NewReader(data),
			func() ([]byte, error) { return imageproc.ThumbnailBytes(data, width, thumbQuality) })
	}
	f, err := os.Open(path)
	if err != nil {
		return errorf(http.StatusNotFound, "the file of image %q cannot be read: %v", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return errorf(http.StatusNotFound, "the file of image %q is not a regular file", id)
	}
	return s.serveImage(w, r, id, fmt.Sprintf("%s\x00%d", path, fi.ModTime().UnixNano()), fi.ModTime(), width, f,
		func() ([]byte, error) { return imageproc.Thumbnail(path, width, thumbQuality) })
}

// serveImage writes the image whole (width 0; its content type sniffed) or
// its thumbnail, made by thumb and cached under key and the width.
func (s *Server) serveImage(w http.ResponseWriter, r *http.Request, id, key string, modTime time.Time, width int,
	content io.ReadSeeker, thumb func() ([]byte, error)) error {
	if width == 0 {
		http.ServeContent(w, r, "", modTime, content)
		return nil
	}
	key = fmt.Sprintf("%s\x00%d", key, width)
	data, ok := s.thumbs.get(key)
	if !ok {
		var err error
		if data, err = thumb(); err != nil {
			return errorf(http.StatusUnprocessableEntity, "image %q: %v", id, err)
		}
		if width <= maxCachedWidth {
			s.thumbs.put(key, data)
		}
	}
	w.Header().Set("Content-Type", "image/jpeg")
	http.ServeContent(w, r, "", modTime, bytes.NewReader(data))
	return nil
}

// thumbCache keeps recently served thumbnails, least recently used out
// first, up to max bytes.
type thumbCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // front: most recent; values *thumbEntry
	byKey map[string]*list.Element
}

type thumbEntry struct {
	key  string
	data []byte
}

func newThumbCache(max int64) *thumbCache {
	return &thumbCache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *thumbCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*thumbEntry).data, true
}

func (c *thumbCache) put(key string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(data)) > c.max {
		return
	}
	if _, ok := c.byKey[key]; ok {
		return
	}
	c.byKey[key] = c.order.PushFront(&thumbEntry{key: key, data: data})
	c.size += int64(len(data))
	for c.size > c.max {
		old := c.order.Back()
		te := old.Value.(*thumbEntry)
		c.order.Remove(old)
		delete(c.byKey, te.key)
		c.size -= int64(len(te.data))
	}
}

// len is the number of cached thumbnails and their bytes.
func (c *thumbCache) len() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.size
}
