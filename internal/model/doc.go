// Package model is the CLIP dual encoder with OpenAI CLIP semantics, and
// SigLIP, written against the ops interface of internal/backend
// (hand-written forward and backward over flat float32 buffers, as in
// llm.c), in Hugging Face's CLIPModel and SiglipModel layouts on disk.
//
// # Building a model
//
//	cfg, err := model.LoadConfig(dir + "/config.json") // HF defaults for absent keys
//	m, err := model.Load(dir, be)      // config.json + model.safetensors (F32/F16/BF16)
//	m, err := model.New(cfg, be, seed) // random init, roughly Hugging Face's
//	err = m.Save(dir)                  // config.json + model.safetensors (F32; LoRA merged)
//
// Presets: DefaultConfig/ViTB32Config, ViTB16Config, ViTL14Config(224|336), TinyConfig.
//
// # Forward (embedding)
//
// Activations live in memory plans, allocated once per tower and batch size
// and reused for every batch (a smaller last batch, n < B, reuses the same
// plan). A plan is either for training (keeps every layer's activations for
// the backward pass) or for inference (one set of layer buffers shared by all
// layers: far less memory, no backward):
//
//	vp := m.NewVisionPlan(B, false)        // inference plan
//	emb, err := m.VisionForward(vp, pixels, n) // pixels [n,3,S,S] normalised, host
//	emb, err = m.VisionForwardImages(vp, hwc, &lut, n) // or decoded uint8 [n,S,S,3], normalised on the backend
//	tp := m.NewTextPlan(B, false)
//	emb, err := m.TextForward(tp, ids, n)      // ids [n,L] host, L <= context (77)
//
// Both return the raw (unnormalised) projections [n, D] as a backend buffer
// view owned by the plan (valid until the plan's next forward); use
// be.Download to read them. Text is pooled at the end-of-text token, the
// argmax of each row's ids (computed on the host); because attention is
// causal, the tower only runs the first max(eot)+1 positions of the batch,
// which gives identical results.
//
// # Training
//
//	vp := m.NewVisionPlan(B, true); tp := m.NewTextPlan(B, true)
//	ts, _ := m.NewTrainStep(vp, tp)
//	m.ZeroGrads()                               // allocates gradients on first use
//	res, err := ts.Run(&model.Batch{N: n, Tokens: ..., Images: ..., Loss: ...})
//	for _, p := range m.Params() { if p.Trainable { be.AdamW(p.W, p.G, ...) } }
//
// TrainStep.Run is one micro-batch: both towers forward (LoRA dropout from
// the Batch's seeds), the loss on the host (internal/loss) of the
// downloaded embeddings, their gradients uploaded, VisionBackward and
// TextBackward (which ACCUMULATE into Param.G) and AddLogitScaleGrad; a
// batch larger than the plans runs as GradCache chunks.
//
// A training plan keeps, per layer, what the backward cannot cheaply
// recompute; layer-norm and activation outputs are recomputed there, and with
// RecomputeMLP(true) the MLP's hidden activations too. Working buffers
// (branch outputs, gradients flowing down) are shared by all of a model's
// plans, so run one plan at a time.
//
// Backward passes accumulate, so gradient accumulation and GradCache chunks
// need one ZeroGrads per optimizer step. A backward must follow the forward
// of the same plan (the plan holds the activations). Dropout masks are drawn
// from the seed given to SetDropout, the module and the layer, so two
// forwards of the same rows with the same seed see the same masks (GradCache:
// run the no-grad pass in the same chunks with the same seeds as the
// recomputation).
//
// # Parameters
//
// Params lists every tensor under its Hugging Face name, in a fixed order:
// W is the weight, G its gradient (nil until the first ZeroGrads, and nil
// for frozen parameters), Trainable says whether the backward computes it,
// Decay whether weight decay applies (tensors of 2 or more dimensions:
// weights and embeddings; not biases, layer norms, class_embedding (nor
// SigLIP's probe) or logit_scale, as OpenAI's CLIP training). logit_scale
// is a parameter (shape []; SigLIP's [1], beside logit_bias), the log of
// the logit multiplier. All parameters are trainable after Load/New (full
// fine-tuning); SetTrainable freezes or unfreezes by name.
//
// # LoRA
//
// ApplyLoRA adds adapters to linear layers whose Hugging Face module path
// matches a target (PEFT's rule: the path equals the target or ends with
// "."+target), in both towers, and freezes every base parameter:
// y = W x + b + (alpha/r) · B A dropout(x), A [r,in] Kaiming-uniform
// (bound 1/sqrt(in), as PEFT), B [out,r] zero. Adapter parameters appear in
// Params under PEFT's names base_model.model.<module>.lora_A.weight and
// .lora_B.weight. MergedTensors gives W + (alpha/r)·B·A for a plain
// checkpoint (Save writes it), LoRATensors and SaveAdapter the PEFT adapter.
// Create plans after ApplyLoRA (a forward on an older plan is an error).
//
// # SigLIP
//
// config.json's model_type "siglip" (Config.ModelType, IsSigLIP) selects
// Hugging Face's SiglipModel (transformers' modeling_siglip.py; presets
// SigLIPBaseConfig, google/siglip-base-patch16-224). Both towers share
// CLIP's pre-LN blocks (activation from hidden_act, gelu_pytorch_tanh by
// default, layer_norm_eps 1e-6); what differs:
//   - vision: the patch embedding has a bias, positions are learned, there
//     is no class token and no pre-LN; post_layernorm applies to every token
//     and the image embedding is the attention-pooling head's output
//     (vision_model.head: a probe token [1,1,C] attends to the tokens through
//     nn.MultiheadAttention, in_proj_weight [3C,C] holding q, k, v, then
//     h + mlp(layernorm(h))), width vision hidden_size, no projection;
//   - text: attention is bidirectional (no causal mask, no padding mask:
//     SiglipProcessor pads to max_length), so every row runs its full
//     length and is pooled at its last position, then text_model.head
//     (Linear with bias, hidden_size to text_config.projection_size, which
//     must equal the vision width);
//   - logit_scale and logit_bias, both shape [1] (HasLogitBias, LogitBias,
//     AddLogitBiasGrad); New starts them at log 10 and -10 as the SigLIP
//     paper does; the sigmoid loss is internal/loss's.
//
// The head's cross-attention runs on the backend's self-attention with
// the probe's query broadcast to every row (all rows then equal; row 0 is
// kept, and only it gets an output gradient). LoRA targets the blocks'
// q/k/v/out_proj and fc1/fc2, the head's MLP (fc1, fc2) and text_model.head
// ("head"), never the head's nn.MultiheadAttention: its in_proj is one
// fused tensor, and torch's forward reads its out_proj's weight without
// calling the module, so a PEFT adapter there would be ignored until
// merged. SaveAdapter therefore writes SigLIP's target_modules as the
// adapted layers' full paths, which PEFT matches exactly.
package model
