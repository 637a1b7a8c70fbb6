package main

// description is prepare's --help text: the stream it writes and the
// sources it reads (kept apart from main.go, which is flags and wiring).
const description = `Write a dataset as a clipline stream: one row per image.

  prepare synthetic --render-dir DIR [--domain general|scenes] [--seed N] [--images N]
  prepare jsonl FILE [--image-root DIR] [--val-frac F] [--test-frac F] [--seed N]
  prepare flickr30k --dir DIR | --download [--cache-dir DIR]
  prepare webdataset SHARD.tar|DIR... [--split NAME | --val-frac F --test-frac F]
  prepare parquet FILE|DIR... [--image-column C] [--caption-column C] [--id-column C]

Writes an Arrow IPC stream (stdout by default, or --out FILE, which appears
only once complete) with the columns

  image_id    utf8        stable id of the image (independent of where files live)
  split       utf8        train, val, test (or a name the source gives)
  image_path  utf8        ABSOLUTE path of the image file; decode reads it as-is
  image_bytes binary      the image file itself, instead of image_path, from
                          the sources that carry images (webdataset,
                          parquet); with --embed-images the files' bytes
                          beside image_path, so the stream needs no image
                          files (decode, embed and train read image_bytes
                          first)
  captions    list<utf8>  every caption of the image
  url         utf8        where the image was downloaded from (webdataset and
                          parquet, when the source says; null if unknown)

and a provenance entry (stage and arguments) in the schema metadata. Rows are
grouped by image: a caption listed under several images appears in each of
their rows (multi-positive). Nothing is written when the source is empty or
has an error; the message names the file and line or entry (with
--embed-images, an image file that is missing or no image names its row).

Sources:

  synthetic  the embedded default, no network: shapes rendered into
             --render-dir (160-320 px, PNG and JPEG), five captions each,
             deterministic from --seed. --domain general: one object (shape,
             colour, size, position, background), for pretraining. --domain
             scenes: two or three objects with spatial relations, counts and
             textures, the fine-tuning target. Objects stay in the central
             square that decode's center crop keeps. --jsonl DIR writes it
             as vembed-factory's JSONL instead (DIR/train.jsonl, val.jsonl,
             test.jsonl; image_root DIR), for train's data_path.
  jsonl      one JSON object a line: {"query": TEXT, "positive": PATH or
             [PATH, ...]} ("caption"/"image" also accepted; optional "split",
             default train). Relative paths resolve against --image-root
             (default: the JSONL file's directory). --val-frac and
             --test-frac split the images without a "split" key by image
             (all captions of an image in one split), seeded by --seed as
             synthetic's split; images with a "split" key keep it.
  flickr30k  a local copy (--dir: images plus dataset_flickr30k.json, or the
             Hugging Face mirror's flickr_annotations_30k.csv), or --download
             the mirror nlphuji/flickr30k (4.4 GB zip + CSV) into a cache with
             resume and progress, then convert. Karpathy splits: 29,000 train,
             1,014 val, 1,000 test images.
  webdataset tar shards as img2dataset writes them (.tar or .tar.gz; a
             directory stands for its *.tar, *.tar.gz, *.tgz in name order):
             members grouped into samples by key (the member path up to the
             first dot of the base name, as webdataset and open_clip group
             them): KEY.jpg, .jpeg, .png or .webp the image, KEY.txt its
             caption, optional KEY.json metadata ("key" the image_id, else
             KEY; "url"; "caption" when there is no .txt). A sample with no
             image, no caption, two images or an unreadable member is an
             error naming shard and sample (--skip-bad skips and counts
             them); a damaged tar always fails. --val-frac and --test-frac
             draw over the samples in order, bad ones included. The shards
             are read twice: once without the images (a plain .tar seeks
             over them) to check and count, then to write.
  parquet    Hugging Face datasets' and img2dataset's parquet files (a
             directory stands for its *.parquet in name order), read a row
             group at a time with only the columns used. --image-column:
             binary, or Hugging Face's Image struct {bytes, path} (default
             image, jpg, png, webp or img); --caption-column: string or
             list of strings (default caption, captions, text or txt);
             --id-column (default image_id, key, id or img_id; else
             FILESTEM/ROW). A "split" column's values are kept, and so is
             the split of a file named as Hugging Face names a split's
             files (train-00000-of-00002.parquet; validation is val); the
             other rows get --split or the --val-frac/--test-frac draw
             (over the rows in order, bad ones included). A row with a null or
             unreadable image (an Image with only a path), a null or empty
             caption or a null id is an error naming file and row
             (--skip-bad skips and counts them); a row whose img2dataset
             "status" is not success (a failed download) is skipped and
             counted.

--shard K/N (or env, in a Slurm array or Kubernetes Indexed Job) writes
only part K of N contiguous parts of the rows, as --out
DIR/part-KKKKK-of-NNNNN.arrow; splits are drawn over the whole dataset, so
the parts read as one directory equal the unsharded stream. synthetic
renders only its part's images; webdataset parts are contiguous ranges of
the shard files, each read by one part, and parquet parts contiguous
ranges of the files' row groups (docs/scale.md).

Downloads are cached under $CLIPLINE_CACHE (default ~/.cache/clipline).`
