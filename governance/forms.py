from __future__ import annotations

from django import forms

from catalog.models import Environment


class PromotionForm(forms.Form):
    model_version = forms.IntegerField(widget=forms.HiddenInput)
    environment = forms.ChoiceField(choices=Environment.choices, widget=forms.RadioSelect)
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "What changed, how it was evaluated, why now."}),
        help_text="Approvers read this first.",
    )


class DecisionForm(forms.Form):
    comment = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Required when you reject."
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class RollbackForm(forms.Form):
    environment = forms.ChoiceField(choices=Environment.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit trail.")
