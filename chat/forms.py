"""Validation of everything a chat client sends."""

from django import forms
from django.core.exceptions import ValidationError


class MessageForm(forms.Form):
    text = forms.CharField(max_length=2000, strip=True)


class NickForm(forms.Form):
    name = forms.CharField(max_length=32, strip=True)
    color = forms.RegexField(regex=r"^#[0-9a-fA-F]{6}$", error_messages={"invalid": "Enter a colour as #rrggbb."})

    def clean_name(self):
        name = self.cleaned_data["name"]
        if not name.isprintable():
            raise ValidationError("Use printable characters only.")
        return name

    def clean_color(self):
        return self.cleaned_data["color"].lower()


def errors_detail(form):
    """One readable line from a form's errors, e.g. 'text: This field is required.'"""
    return " ".join(f"{field}: {' '.join(messages)}" for field, messages in form.errors.items())
