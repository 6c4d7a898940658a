"""Scoring systems on the labelled splits.

``metrics`` (accuracy, macro-F1, kappa, bootstrap intervals), ``baselines``
(SVM on article embeddings, text only, image only, most frequent),
``ablations`` (test splits with images shuffled or blank, texts shuffled,
counterfactual texts), ``probe`` (what the embedding holds of a scene) and
``report``, which writes Table 3, the ablation table, confusion matrices and
label statistics.
"""
