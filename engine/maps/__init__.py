"""Maps: projections to 2-D (UMAP, PCA, t-SNE), layer maps, sweeps, clusters and the
scores of a map (trustworthiness, faithfulness), and the label palette."""
