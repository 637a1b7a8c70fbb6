#!/usr/bin/env python3
"""Loads clipline-written checkpoints in transformers (and the PEFT adapter on
the base model in peft) and compares their projections with clipline's, from
the file scripts/hfcheck/main.go wrote. CLIP and SigLIP alike: AutoModel
picks CLIPModel or SiglipModel from config.json's model_type (SigLIP's text
tower gets no attention mask, as SiglipProcessor's max_length padding
implies and clipline computes).

  python3 scripts/hfcheck/check.py --ref ref.safetensors --merged DIR [--base DIR --adapter DIR]
"""
import argparse, json, sys
import torch
from safetensors.torch import load_file
from transformers import AutoModel


def project(model, ref):
    with torch.no_grad():
        ids = ref["input_ids"].long()
        img = model.get_image_features(pixel_values=ref["pixel_values"])
        txt = model.get_text_features(input_ids=ids)
    # transformers 5 may return a model output instead of a tensor
    img = getattr(img, "pooler_output", img) if not torch.is_tensor(img) else img
    txt = getattr(txt, "pooler_output", txt) if not torch.is_tensor(txt) else txt
    return {"image": (img - ref["image_embeds"]).abs().max().item(),
            "text": (txt - ref["text_embeds"]).abs().max().item()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True)
    ap.add_argument("--merged", required=True)
    ap.add_argument("--base")
    ap.add_argument("--adapter")
    a = ap.parse_args()
    ref = load_file(a.ref)
    out, ok = {}, True
    m = AutoModel.from_pretrained(a.merged).eval()
    out["merged_checkpoint_in_transformers"] = project(m, ref)
    if a.base and a.adapter:
        try:
            from peft import PeftModel
            base = AutoModel.from_pretrained(a.base).eval()
            pm = PeftModel.from_pretrained(base, a.adapter).eval()
            out["base_plus_adapter_in_peft"] = project(pm.base_model.model, ref)
        except Exception as e:  # report, don't hide
            out["base_plus_adapter_in_peft"] = "error: %r" % (e,)
            ok = False
    for k, v in out.items():
        if isinstance(v, dict) and max(v.values()) > 1e-4:
            ok = False
    out["ok_within_1e-4"] = ok
    print(json.dumps(out, indent=1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
