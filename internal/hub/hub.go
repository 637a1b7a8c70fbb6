// Package hub fetches a CLIP checkpoint from the Hugging Face hub, so that
// `--model openai/clip-vit-base-patch32` works like `--model DIR`.
//
// Files come from {endpoint}/{id}/resolve/{revision}/{file} (the URL scheme
// huggingface_hub uses) through internal/fetch (resume, size check,
// progress) into a staging folder, {cache}/hub/.incomplete/{owner}--{name}--{revision},
// which is renamed to {cache}/hub/{id}/{revision}/ when every file is there.
// So a checkpoint folder in the cache is always complete and a second run
// works offline; a failed download removes the staging folder (a killed one
// leaves it, and the next run resumes from it). One process at a time
// downloads a model (a file lock), so the stages of one pipeline started
// together fetch it once. Delete the folder to pick up a newer upstream
// revision.
package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/clipline/clipline/internal/fetch"
)

// DefaultEndpoint is used unless Options.Endpoint or $HF_ENDPOINT says otherwise.
const DefaultEndpoint = "https://huggingface.co"

// Required files of a checkpoint in Hugging Face layout (CLIPModel or
// SiglipModel), besides its tokenizer.
var Required = []string{"config.json", "model.safetensors", "preprocessor_config.json"}

// Tokenizers are the tokenizer files a checkpoint holds one set of, tried
// in order: CLIP's BPE vocabulary, SigLIP's SentencePiece model.
var Tokenizers = [][]string{{"vocab.json", "merges.txt"}, {"spiece.model"}}

// Optional files, fetched when the repository has them.
var Optional = []string{"tokenizer_config.json", "special_tokens_map.json"}

// Options configure Resolve and Download. The zero value uses the defaults.
type Options struct {
	Revision string // branch, tag or commit; default "main"
	Endpoint string // default $HF_ENDPOINT, else DefaultEndpoint
	CacheDir string // root of the cache; default CacheRoot()
	Token    string // bearer token for gated/private repos; default $HF_TOKEN
	// Fetch is the base for each download: Client, Progress (os.Stderr for
	// a bar; nil for silence), Retries, RetryDelay.
	Fetch fetch.Options
	// Context for Resolve; default context.Background().
	Context context.Context
}

// CacheRoot is fetch.CacheRoot: $CLIPLINE_CACHE, else ~/.cache/clipline.
func CacheRoot() string { return fetch.CacheRoot() }

// Model is Resolve as the stages call it for their --model argument: the
// default cache, endpoint and token, the download's progress on progress
// (the stage's stderr).
func Model(modelArg string, progress io.Writer) (string, error) {
	return Resolve(modelArg, Options{Fetch: fetch.Options{Progress: progress}})
}

// Resolve turns a --model argument into a local checkpoint directory: an
// existing directory is returned as-is (no network); anything else that
// looks like a hub id ("owner/name" or "name") is downloaded into the cache.
func Resolve(modelArg string, opts Options) (string, error) {
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if modelArg == "" {
		return "", errors.New("no model given: pass a checkpoint directory or a Hugging Face model id such as openai/clip-vit-base-patch32")
	}
	if st, err := os.Stat(modelArg); err == nil {
		if st.IsDir() {
			return modelArg, nil
		}
		return "", fmt.Errorf("model %s is a file; want a checkpoint directory (config.json, model.safetensors, ...) or a hub model id", modelArg)
	}
	if !ValidID(modelArg) {
		return "", fmt.Errorf("model %q is neither an existing directory nor a Hugging Face model id (owner/name)", modelArg)
	}
	dir, err := Download(ctx, modelArg, opts)
	if err != nil {
		return "", fmt.Errorf("model %q is not a local directory; fetching it from the hub: %w", modelArg, err)
	}
	return dir, nil
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

// ValidID reports whether s has the shape of a hub model id.
func ValidID(s string) bool {
	return idRe.MatchString(s) && !strings.Contains(s, "..") && !strings.HasSuffix(s, ".")
}

// completeMarker is written last in a downloaded checkpoint directory.
const completeMarker = ".clipline-complete"

// Dir is where Download puts id at revision.
func Dir(id string, opts Options) string {
	return filepath.Join(hubRoot(opts), filepath.FromSlash(id), flatRev(opts))
}

// stagingDir is where Download assembles id before renaming it to Dir. The
// hub forbids "--" in names, so the flat name is unambiguous.
func stagingDir(id string, opts Options) string {
	return filepath.Join(hubRoot(opts), ".incomplete", strings.ReplaceAll(id, "/", "--")+"--"+flatRev(opts))
}

func hubRoot(opts Options) string {
	root := opts.CacheDir
	if root == "" {
		root = CacheRoot()
	}
	return filepath.Join(root, "hub")
}

// flatRev is the revision as one folder name: refs/pr/3 has slashes.
func flatRev(opts Options) string {
	rev := opts.Revision
	if rev == "" {
		rev = "main"
	}
	return strings.ReplaceAll(rev, "/", "--")
}

// Download fetches the checkpoint files of id into Dir(id, opts) and returns
// that directory. On failure the cache holds nothing of id.
func Download(ctx context.Context, id string, opts Options) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("invalid model id %q (want owner/name)", id)
	}
	rev := opts.Revision
	if rev == "" {
		rev = "main"
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv("HF_ENDPOINT")
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	endpoint = strings.TrimRight(endpoint, "/")
	token := opts.Token
	if token == "" {
		token = os.Getenv("HF_TOKEN")
	}
	dir := Dir(id, opts)

	// A finished download leaves a marker, so later runs need no network
	// (optional files that the repository lacks would otherwise be asked
	// for again every time).
	marker := filepath.Join(dir, completeMarker)
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	stage := stagingDir(id, opts)
	created, err := fetch.MkdirAll(filepath.Dir(stage))
	if err != nil {
		return "", fmt.Errorf("%s: %w", id, err)
	}
	progress := opts.Fetch.Progress
	unlock, err := lock(stage+".lock", func() {
		if progress != nil {
			fmt.Fprintf(progress, "hub: waiting for another clipline process downloading %s@%s\n", id, rev)
		}
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", id, err)
	}
	defer func() {
		unlock()
		// The cache keeps no empty folder: only empty ones go (another
		// download may be staged beside this one).
		fetch.RemoveEmpty(append([]string{filepath.Dir(stage)}, created...))
	}()
	if _, err := os.Stat(marker); err == nil {
		return dir, nil // the other process finished it
	}
	if progress != nil {
		fmt.Fprintf(progress, "hub: downloading %s@%s from %s into %s\n", id, rev, endpoint, dir)
	}
	if err := fetchAll(ctx, id, rev, endpoint, token, stage, opts.Fetch); err != nil {
		os.RemoveAll(stage)
		return "", err
	}
	// A folder without the marker is a partial one from an older clipline.
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("%s: %w", id, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("%s: %w", id, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return "", fmt.Errorf("%s: %w", id, err)
	}
	return dir, nil
}

// fetchAll downloads the checkpoint files of id into stage and writes the
// completion marker there last.
func fetchAll(ctx context.Context, id, rev, endpoint, token, stage string, fo fetch.Options) error {
	fo.ExpectedSize = 0
	if token != "" {
		fo.Header = http.Header{"Authorization": {"Bearer " + token}}
	}
	fileURL := func(name string) string {
		return endpoint + "/" + id + "/resolve/" + url.PathEscape(rev) + "/" + name
	}
	get := func(name string) error {
		o := fo
		o.Label = id + "/" + name
		err := fetch.File(ctx, fileURL(name), filepath.Join(stage, name), o)
		var fe *fetch.Error
		if errors.As(err, &fe) {
			// Name the file and URL; the staging path would be gone.
			return fmt.Errorf("%s (%s): %w", name, fe.URL, fe.Err)
		}
		return err
	}

	// fail explains why required file name could not be had.
	fail := func(name string, err error) error {
		switch {
		case name == "model.safetensors" && fetch.IsStatus(err, http.StatusNotFound):
			if hasFile(ctx, fo, fileURL("pytorch_model.bin")) {
				return fmt.Errorf("%s at revision %s has only PyTorch .bin weights (pytorch_model.bin), no model.safetensors; "+
					"clipline reads safetensors only (it never unpickles): convert it, e.g. in Python "+
					"CLIPModel.from_pretrained(%q).save_pretrained(DIR, safe_serialization=True), and pass --model DIR", id, rev, id)
			}
			return fmt.Errorf("%s at revision %s has no model.safetensors: %w", id, rev, err)
		case fetch.IsStatus(err, http.StatusUnauthorized) || fetch.IsStatus(err, http.StatusForbidden):
			return fmt.Errorf("%s: access denied; the repository may not exist, or is private or gated (set HF_TOKEN): %w", id, err)
		case fetch.IsStatus(err, http.StatusNotFound):
			return fmt.Errorf("%s at revision %s lacks %s, which a CLIP or SigLIP checkpoint needs: %w", id, rev, name, err)
		}
		return fmt.Errorf("%s at revision %s: %w", id, rev, err)
	}
	for _, name := range Required {
		if err := get(name); err != nil {
			return fail(name, err)
		}
	}
	got := append([]string(nil), Required...)
	tokenizer := false
	for _, set := range Tokenizers {
		err := get(set[0])
		if fetch.IsStatus(err, http.StatusNotFound) {
			continue // another kind of tokenizer
		}
		if err != nil {
			return fail(set[0], err)
		}
		for _, name := range set[1:] {
			if err := get(name); err != nil {
				return fail(name, err)
			}
		}
		got, tokenizer = append(got, set...), true
		break
	}
	if !tokenizer {
		return fmt.Errorf("%s at revision %s has no tokenizer clipline reads: neither vocab.json and merges.txt (CLIP's BPE) nor spiece.model (SigLIP's SentencePiece)", id, rev)
	}
	for _, name := range Optional {
		err := get(name)
		if err == nil {
			got = append(got, name)
		} else if !fetch.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("%s at revision %s: %w", id, rev, err)
		}
	}
	note := fmt.Sprintf("%s@%s from %s\n%s\n", id, rev, endpoint, strings.Join(got, "\n"))
	if err := os.WriteFile(filepath.Join(stage, completeMarker), []byte(note), 0o644); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	return nil
}

// hasFile asks the server with HEAD whether url exists (redirects followed).
func hasFile(ctx context.Context, fo fetch.Options, u string) bool {
	client := fo.Client
	if client == nil {
		client = fetch.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false
	}
	for k, vs := range fo.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
