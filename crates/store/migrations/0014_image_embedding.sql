-- Screenshot embeddings from the analysis model's vision tower (issue 16): the mean-pooled
-- merger output of each stored image, once per blob (content hash) and model. A vector only
-- compares with vectors of the same weights, so `model` (the engine's model id) is part of
-- the key: switching models leaves the old vectors unused, never mixed in.
-- `vector` is `dim` f32 values, little-endian.
CREATE TABLE image_embedding (
    sha256      TEXT NOT NULL,
    model       TEXT NOT NULL,
    dim         INTEGER NOT NULL CHECK (dim > 0),
    vector      BLOB NOT NULL CHECK (length(vector) = 4 * dim),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (sha256, model)
) WITHOUT ROWID;
