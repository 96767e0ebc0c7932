"""Validation of everything a chat client sends."""

from django import forms
from django.core.exceptions import ValidationError

from .models import Room


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


class OpenRoomForm(forms.Form):
    """The chat page's "Open a room" form: a room name to go to. A room that does not exist yet is
    opened by a logged-in user's visit (chat.services.room_to_open); a guest is told to log in."""

    name = forms.CharField(label="Room", max_length=64, strip=True,
                           widget=forms.TextInput(attrs={"placeholder": "e.g. book-club", "autocomplete": "off"}))

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_name(self):
        from .services import may_create_room, validate_room_name  # (services import this module)

        name = validate_room_name(self.cleaned_data["name"].lower())
        if not Room.objects.filter(name=name).exists() and not may_create_room(name, self.user):
            raise ValidationError(f"There is no room named {name!r} yet: log in or sign up to open it.")
        return name
